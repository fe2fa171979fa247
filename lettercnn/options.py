"""How the ``letters`` commands declare their options and pass them on.

Option defaults are the library's own values: an option is None when not given
(:func:`option` states the library's default in its help), and :func:`given_options`
keeps the ones the user gave. Typer, Rich and the standard library only.
"""

from __future__ import annotations

from typing import Annotated, Any, Optional

import typer
from rich.markup import escape


def hide_flag_types() -> None:
    """Show no type for a flag in --help: Typer 0.29 prints ``<bool>`` beside every flag,
    which takes no value; options that take one keep their type (``<int>``, ``<path>``)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None:  # an older Typer, which shows none
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


hide_flag_types()


def command_args(ctx: typer.Context, leave_out: tuple[str, ...]) -> list[str]:
    """The options a command was given, as arguments again (for the processes it launches)."""
    args: list[str] = []
    for param in ctx.command.params:
        value = ctx.params.get(param.name or "")
        if value is None or param.name in leave_out or param.param_type_name != "option":
            continue
        if param.is_flag:
            args.append(param.opts[0] if value else param.secondary_opts[0])
        else:
            args += [param.opts[0], str(value)]
    return args


def option(help_text: str, *names: str, default: object = None) -> Any:
    """A ``typer.Option`` that is None when not given, with the library's default stated in its help."""
    if default is not None:
        help_text += f" [default: {default}]"
    return typer.Option(*names, help=escape(help_text), show_default=False)  # escape: "[...]" is not markup


# --threads of every command that computes with torch (issue 14: a busy core made the
# default of one thread per core 5x slower than one thread).
Threads = Annotated[
    Optional[int],
    option("Torch threads; fewer if other programs keep cores busy.", default="$OMP_NUM_THREADS, else usable cores"),
]


def given_options(**options: Any) -> dict[str, Any]:
    """The options the user gave (None means: not given, the library's default applies)."""
    return {key: value for key, value in options.items() if value is not None}


def int_list(text: str, name: str) -> list[int]:
    """'1,64' -> [1, 64]; ValueError naming the option otherwise."""
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{name} takes comma-separated integers such as 1,64; got {text!r}") from None
