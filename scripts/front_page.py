"""Write README.md from docs/index.md, the docs site's front page: one source, two places.

docs/index.md links as the site sees it (``guides/vae.md``, ``images/demo_samples.png``,
``../benchmarks/results/vae_vs_gan.md``); README.md sits one folder up, so each relative link gains
``docs/``. Numbers and tables docs/index.md quotes from results files (``{{ result: ... }}``,
``{{ table: ... }}``, see docs_hooks.py) are written into README.md as they stand in those files, so GitHub
shows them too. ``tests/test_docs.py`` fails when README.md is not this script's output.

    python scripts/front_page.py            # rewrite README.md
    python scripts/front_page.py --check    # exit 1 if README.md is out of date
"""
from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from docs_hooks import expand  # a sibling script, not a package

ROOT = Path(__file__).resolve().parent.parent
SOURCE, README = ROOT / "docs" / "index.md", ROOT / "README.md"
HEADER = "<!-- Generated from docs/index.md by scripts/front_page.py: edit that file, then run the script. -->\n"
LINK = re.compile(r"(?P<open>!?\[[^\]]*\]\()(?P<target>[^)\s]+)")


def _rewrite(target: str) -> str:
    if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith(("#", "/")):
        return target  # a URL, an anchor on the page, or an absolute path: the same from both places
    return target[3:] if target.startswith("../") else "docs/" + target  # docs/../x is x


def render(text: str) -> str:
    """README.md's text for docs/index.md's ``text`` (outside code blocks: results references expanded, links
    rewritten)."""
    parts = re.split(r"(```.*?```)", text, flags=re.DOTALL)
    parts = [part if part.startswith("```") else LINK.sub(lambda m: m["open"] + _rewrite(m["target"]), expand(part))
             for part in parts]
    return HEADER + "".join(parts)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that README.md is up to date")
    parser.add_argument("--out", type=Path, default=README, help="where to write (default: README.md)")
    args = parser.parse_args()
    expected = render(SOURCE.read_text(encoding="utf-8"))
    if args.check:
        if args.out.read_text(encoding="utf-8") != expected:
            print(f"{args.out} is out of date: run python scripts/front_page.py", file=sys.stderr)
            return 1
        return 0
    args.out.write_text(expected, encoding="utf-8")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
