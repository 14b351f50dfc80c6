"""The project's own docs stand alone: a user's clone has no ../shared/, and every link
the README and docs/ make to a file of the project leads somewhere."""

from __future__ import annotations

import re

from tests.conftest import PROJECT_ROOT

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
SHIPPED = ["src", "conf", "notebooks", "docs", "README.md", "Dockerfile", "docker-compose.yml"]
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def shipped_files():
    for name in SHIPPED:
        path = PROJECT_ROOT / name
        yield from (p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]


def test_nothing_a_user_gets_points_at_the_shared_folder():
    pointing = []
    for path in shipped_files():
        if path.suffix in {".pyc", ".png", ".db"}:
            continue
        for number, line in enumerate(path.read_text(errors="ignore").splitlines(), 1):
            if "../shared" in line:
                pointing.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert not pointing, "\n".join(pointing)


def test_relative_links_in_the_docs_lead_to_files_of_the_project():
    broken = []
    for doc in DOCS:
        for target in LINK.findall(doc.read_text()):
            if re.match(r"^[a-z]+:", target):  # http:, https:, mailto:
                continue
            if not (doc.parent / target).resolve().exists():
                broken.append(f"{doc.relative_to(PROJECT_ROOT)} -> {target}")
    assert not broken, "\n".join(broken)


def test_the_readme_leads_to_the_architecture_and_starts_with_the_quick_start():
    readme = (PROJECT_ROOT / "README.md").read_text()
    assert "](docs/architecture.md)" in readme
    headings = re.findall(r"(?m)^## (.+)$", readme)
    assert headings[0] == "Quick start", headings
    architecture = (PROJECT_ROOT / "docs" / "architecture.md").read_text()
    assert "```mermaid\nflowchart" in architecture
    for section in ("## The loop", "## Contracts", "## Where each setting lives"):
        assert section in architecture, section
