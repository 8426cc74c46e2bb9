#!/usr/bin/env python
"""Django's command-line utility for administrative tasks.

Commands that touch the database or the broker (all but those in WITHOUT_STACK) first take
the explicit step that makes the embedded Postgres and Redis ready where the settings use
them (`apps.stack.start_for`: it starts nothing when DATABASE_URL / REDIS_URL are set).
"""

import os
import sys

# Commands that need neither the database nor the broker: they run without the step
# (`stack` starts and stops the embedded servers itself).
WITHOUT_STACK = {"help", "version", "check", "makemigrations", "collectstatic", "findstatic",
                 "diffsettings", "spectacular", "startapp", "startproject", "compilemessages",
                 "makemessages", "stack"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "apps.settings")
    from django.core.management import execute_from_command_line

    command = sys.argv[1] if len(sys.argv) > 1 else "help"
    if command not in WITHOUT_STACK and not command.startswith("-"):
        start_stack(sys.argv[2:])
    execute_from_command_line(sys.argv)


def start_stack(args: list[str]) -> None:
    from django.conf import settings
    from django.core.management.base import CommandParser, handle_default_options

    # --settings / --pythonpath count before the settings are read, as Django's own
    # command-line handling does.
    parser = CommandParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--settings")
    parser.add_argument("--pythonpath")
    handle_default_options(parser.parse_known_args(args)[0])
    from apps import stack

    stack.start_for(settings)


if __name__ == "__main__":
    main()
