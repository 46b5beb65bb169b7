#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "leadsite.settings")
    from django.core.management import execute_from_command_line

    if sys.argv[1:2] == ["runserver"]:
        import django

        from leadsite.env import require_secret_key

        django.setup()
        require_secret_key()
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
