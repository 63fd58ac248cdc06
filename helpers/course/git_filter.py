"""A git filter for people who edit the course: notebooks are staged without outputs, execution
counts or widget state (nbstripout), with their cell ids kept, so an executed notebook can never be
committed by accident. `make setup` installs it in a git checkout; `tests/test_project.py` still
rejects a committed output."""
import shlex
import subprocess
import sys
from pathlib import Path

ATTRIBUTES_LINE = "*.ipynb filter=nbstripout diff=ipynb"


def install_git_filter(repo: Path = Path("."), python: str = sys.executable) -> bool:
    """Configure the filter in `repo`'s own git config; False (and nothing changed) outside a checkout."""
    def git(*args):
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)

    if git("rev-parse", "--is-inside-work-tree").returncode != 0:
        return False
    strip = f"{shlex.quote(python)} -m nbstripout --keep-id"  # --keep-id: nbstripout renumbers ids otherwise
    git("config", "filter.nbstripout.clean", strip)
    git("config", "filter.nbstripout.smudge", "cat")
    git("config", "diff.ipynb.textconv", f"{strip} -t")
    attributes = Path(repo) / git("rev-parse", "--git-path", "info/attributes").stdout.strip()
    attributes.parent.mkdir(parents=True, exist_ok=True)
    lines = attributes.read_text().splitlines() if attributes.exists() else []
    if ATTRIBUTES_LINE not in lines:
        attributes.write_text("\n".join(lines + [ATTRIBUTES_LINE]) + "\n")
    return True
