"""Read the Dockerfile and replay its build steps on this machine, without Docker.

The replay keeps the Dockerfile's own commands and moves the container's paths into a
temporary folder: ``/opt/venv`` becomes ``<root>/opt/venv``, ``/app`` ``<root>/app``.
COPY takes files from the repository as the build context (less .dockerignore), RUN runs
the project's install commands as written, and steps that only matter inside a container
(creating and switching to the unprivileged user, chown) are recorded and skipped. A
command it does not know fails the replay rather than being skipped silently.
"""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

# what only makes sense inside the image (users, ownership); everything else must run
CONTAINER_ONLY = {"useradd", "groupadd", "chown"}
# system packages: the replay checks this machine has each one's program instead
SYSTEM_PACKAGES = {"gcc": "gcc", "libc6-dev": None}
# what the replay runs as written (with the container's paths moved)
RUNNABLE = {"python", "pip", "mkdir"}


@dataclass
class Instruction:
    keyword: str
    args: str
    line: int

    def json_args(self) -> list[str] | None:
        """The exec form (``["a", "b"]``) as a list, else None."""
        import json  # noqa: PLC0415

        text = self.args.strip()
        if not text.startswith("["):
            return None
        return json.loads(text)


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]


def parse(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions, pending, start = [], "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue  # a comment inside a continued instruction
        if not pending:
            start = number
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        instructions.append(Instruction(keyword.upper(), args.strip(), start))
    return instructions


def stages(text: str) -> list[Stage]:
    result: list[Stage] = []
    for instruction in parse(text):
        if instruction.keyword == "FROM":
            words = instruction.args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
            result.append(Stage(base=words[0], name=name))
        else:
            assert result, f"line {instruction.line}: {instruction.keyword} before FROM"
            result[-1].instructions.append(instruction)
    return result


def env_pairs(args: str) -> list[tuple[str, str]]:
    """``ENV A=1 B="two words"`` -> [(A, 1), (B, two words)] (the key=value form only)."""
    pairs = []
    for word in shlex.split(args):
        assert "=" in word, f"ENV {args!r}: use the KEY=value form"
        key, _, value = word.partition("=")
        pairs.append((key, value))
    return pairs


def expand(value: str, env: dict[str, str]) -> str:
    """Docker's ``$VAR`` / ``${VAR}`` substitution in ENV values."""
    return re.sub(
        r"\$(?:\{(\w+)\}|(\w+))",
        lambda m: env.get(m.group(1) or m.group(2), ""),
        value,
    )


def dockerignore(context: Path) -> list[str]:
    path = context / ".dockerignore"
    if not path.exists():
        return []
    patterns = []
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        assert not line.startswith("!"), "exceptions in .dockerignore are not replayed"
        patterns.append(line.strip("/"))
    return patterns


def _pattern_regex(pattern: str) -> re.Pattern:
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            parts.append(
                "[^" + pattern[i + 2 : end + 1] if pattern.startswith("[!", i) else pattern[i : end + 1]
            )
            i = end + 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def ignored(relative: str, patterns: list[str]) -> bool:
    """Whether a context path (posix, relative) is excluded: by a pattern that matches it
    or one of its parent folders."""
    parts = PurePosixPath(relative).parts
    candidates = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    return any(_pattern_regex(p).match(c) for p in patterns for c in candidates)


@dataclass
class Replay:
    """The container's file system under ``root``; the build context is ``context``."""

    context: Path
    root: Path
    base_env: dict[str, str]
    log: Path
    skipped: list[str] = field(default_factory=list)
    container_roots: set[str] = field(default_factory=set)

    def host(self, path: str, workdir: str = "/") -> Path:
        absolute = PurePosixPath(workdir) / path
        return self.root / str(absolute).lstrip("/")

    def move(self, value: str) -> str:
        """Container paths in a value (``sqlite:////app/x.db``, ``/opt/venv/bin:...``)
        -> the same paths under ``root``; other paths (the host's PATH) stay."""
        for prefix in sorted(self.container_roots, key=len, reverse=True):
            value = re.sub(
                rf"(?<![\w.-]){re.escape(prefix)}(?=[/:\"']|$)",
                lambda _m, p=prefix: str(self.root) + p,
                value,
            )
        return value

    def run_env(self, env: dict[str, str]) -> dict[str, str]:
        return {k: self.move(v) for k, v in env.items()}

    def build(
        self, dockerfile: Path, strip_pip_flags: tuple[str, ...] = ()
    ) -> tuple[Stage, dict[str, str], str]:
        """Replay every stage; returns the last stage, its environment and workdir."""
        all_stages = stages(dockerfile.read_text())
        patterns = dockerignore(self.context)
        for stage in all_stages:
            for instruction in stage.instructions:
                if instruction.keyword == "WORKDIR":
                    self.container_roots.add(instruction.args)
                elif instruction.keyword == "ENV":
                    self.container_roots.update(
                        v for k, v in env_pairs(instruction.args) if k == "VIRTUAL_ENV"
                    )
        env, workdir = dict(self.base_env), "/"
        for stage in all_stages:
            env, workdir = dict(self.base_env), "/"
            for instruction in stage.instructions:
                keyword, args = instruction.keyword, instruction.args
                if keyword == "ENV":
                    for key, value in env_pairs(args):
                        env[key] = expand(value, env)
                elif keyword == "WORKDIR":
                    workdir = str(PurePosixPath(workdir) / args)
                    self.host(workdir).mkdir(parents=True, exist_ok=True)
                elif keyword == "COPY":
                    self._copy(args, workdir, patterns)
                elif keyword == "RUN":
                    self._run(args, env, workdir, strip_pip_flags)
                elif keyword == "USER":
                    self.skipped.append(f"USER {args}")
                # EXPOSE, HEALTHCHECK, CMD, LABEL: read by the caller
        return all_stages[-1], env, workdir

    def _copy(self, args: str, workdir: str, patterns: list[str]) -> None:
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        *sources, dest = paths
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        target = self.host(dest, workdir)
        for source in sources:
            if from_stage is not None:  # another stage: the same file system here
                origin = self.host(source, "/")
                if origin.resolve() == target.resolve():
                    continue
            else:
                origin = self.context / source
                assert not ignored(source.strip("/"), patterns), f"COPY {source}: excluded by .dockerignore"
            assert origin.exists(), f"COPY {source}: not found"
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    target,
                    dirs_exist_ok=True,
                    ignore=self._ignore(origin, patterns) if from_stage is None else None,
                )
            else:
                into_dir = dest.endswith("/") or len(sources) > 1
                final = target / origin.name if into_dir else target
                final.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, final)

    def _ignore(self, origin: Path, patterns: list[str]):
        def ignore(folder: str, names: list[str]) -> list[str]:
            relative = Path(folder).resolve().relative_to(self.context.resolve()).as_posix()
            prefix = "" if relative == "." else relative + "/"
            return [n for n in names if ignored(prefix + n, patterns)]

        return ignore

    def _run(self, args: str, env: dict[str, str], workdir: str, strip_pip_flags: tuple[str, ...]) -> None:
        for written in (p.strip() for p in args.split("&&")):
            words = shlex.split(written)
            program, command = words[0], written
            if program in CONTAINER_ONLY:
                self.skipped.append(written)
                continue
            if program == "apt-get" or (program == "rm" and "/var/lib/apt/lists/*" in words):
                for package in (w for w in words[2:] if not w.startswith("-")) if "install" in words else ():
                    assert package in SYSTEM_PACKAGES, (
                        f"RUN {written!r}: the replay does not know {package!r}"
                    )
                    tool = SYSTEM_PACKAGES[package]
                    assert tool is None or shutil.which(tool), f"{package}: no {tool} on this machine"
                self.skipped.append(written)
                continue
            assert program in RUNNABLE, f"RUN {written!r}: the replay does not know {program!r}; teach it"
            if program == "mkdir":
                command = shlex.join(w if not w.startswith("/") else str(self.host(w)) for w in words)
            if "pip" in words[:3] and "install" in words:
                command = " ".join(w for w in written.split() if w not in strip_pip_flags)
            with self.log.open("a") as log:
                log.write(f"\n$ {command}\n")
                log.flush()
                done = subprocess.run(
                    ["bash", "-c", command],
                    cwd=self.host(workdir),
                    env=self.run_env(env),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=1200,
                    check=False,
                )
            assert done.returncode == 0, (
                f"RUN {command!r} failed ({done.returncode}); see {self.log}:\n"
                + (self.log.read_text()[-4000:])
            )
