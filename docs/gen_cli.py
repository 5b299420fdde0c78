"""Write the CLI reference page (cli.md) from the parser itself, so that it cannot go stale.

Run by mkdocs-gen-files at every build (see mkdocs.yml); nothing is written into docs/.
"""

from __future__ import annotations

import argparse
import os

import mkdocs_gen_files

from pycemrg_scar_reconstruction.cli.parser import build_parser

os.environ["COLUMNS"] = "100"  # argparse wraps the help to this width
parser = build_parser()
sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
helps = {c.dest: c.help for c in sub._choices_actions}

with mkdocs_gen_files.open("cli.md", "w") as page:
    page.write("# CLI reference\n\n")
    page.write("Generated from the parser at every build of this site. `scar-reconstruct COMMAND --help`\n")
    page.write("shows the options a first run needs; `--help-all` (below) shows every option.\n\n")
    page.write("```text\n" + parser.format_help() + "```\n\n")
    for name, command in sub.choices.items():
        page.write(f"## {name}\n\n{helps.get(name, '')}\n\n```text\n{command.format_help()}```\n\n")
