"""The error boundary every ``letters`` command goes through.

Library errors (:class:`~lettercnn.errors.LetterError`, ``ValueError``, ``OSError``)
become one ``Error: ...`` line on stderr and exit status 1 (:func:`user_errors`); a
command that needs the training extra where it is not installed says so before it
runs; an OpenCV or onnxruntime that does not load is one line naming the fix
(:mod:`lettercnn.native`); Ctrl-C, and SIGTERM while a long command runs, become one
line and exit status 130. One process of a distributed training run reports through
:func:`rank_errors`, so a whole run says one thing. Typer and the standard library only.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

import typer

from lettercnn import native
from lettercnn.errors import LetterError, TrainingInterrupted, require_extra

EXIT_ERROR = 1
# What a shell reports for a process stopped by SIGINT (128 + 2).
EXIT_INTERRUPTED = 130
# Errors the library raises for bad input or a bad environment: its own (LetterError) and
# the built-in ones for a bad value or a missing file. Anything else is a bug and keeps
# its traceback.
USER_ERRORS = (LetterError, ValueError, OSError)


def print_error(message: object) -> None:
    """The one way a command reports a failure: ``Error: <message>`` on stderr."""
    typer.echo(f"Error: {message}", err=True)


@contextlib.contextmanager
def user_errors(needs_training: str | None = None) -> Iterator[None]:
    """The one error boundary of every command.

    Library errors print ``Error: <message>`` on stderr and exit 1, and so does an
    OpenCV or onnxruntime that does not load (:mod:`lettercnn.native` names the missing
    library and the fix); Ctrl-C prints one line and exits 130. Nothing else is caught
    (``typer.Exit`` passes through).

    Args:
        needs_training: the command, e.g. ``"letters train"``, when it needs the
            training extra: without it, one line names the fix before anything runs.

    Raises:
        typer.Exit: with :data:`EXIT_ERROR` or :data:`EXIT_INTERRUPTED`.
    """
    try:
        native.raise_stand_in_failure()  # OpenCV did not load: say why, before anything runs
        if needs_training is not None:
            require_extra(needs_training)
        yield
    except TrainingInterrupted as stop:
        kept = f"last.pt keeps {stop.epochs_done}/{stop.epochs} finished epochs"
        if not stop.epochs_done:
            kept = "no epoch had finished"
        nproc = f" --nproc {stop.world_size}" if stop.world_size > 1 else ""
        typer.echo(f"Interrupted: {kept}; continue with: letters train --resume {stop.run_dir}{nproc}", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        typer.echo("Interrupted.", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except USER_ERRORS as error:
        print_error(error)
        raise typer.Exit(EXIT_ERROR) from None
    except ImportError as error:  # onnxruntime (or OpenCV) is installed but does not load
        failure = native.explain_import_error(error)
        if failure is None:
            raise
        print_error(failure)
        raise typer.Exit(EXIT_ERROR) from None


@contextlib.contextmanager
def terminate_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (``kill``, systemd or docker stop) like Ctrl-C while a long command runs.

    Training then stops the way Ctrl-C stops it: the last finished epoch stays in
    ``last.pt`` and one line says how to resume, instead of a silent death.
    """

    def interrupt(_signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@contextlib.contextmanager
def rank_errors(world: Any) -> Iterator[None]:
    """The error boundary's part in one process of a distributed run: one line for the whole run.

    The process where something went wrong says so (``Error: rank R of N: ...``, also
    left for torch's launcher); the others, stopped because it went (gloo's closed
    connection, the launcher's SIGTERM), exit without a word. Ctrl-C reaches every
    process: rank 0 alone prints the usual line. One process: :func:`terminate_as_interrupt`.

    Args:
        world: this process's :class:`lettercnn.training.distributed.World`.
    """
    if not world.active:
        with terminate_as_interrupt():
            yield
        return
    from lettercnn.training import distributed

    terminated: list[int] = []

    def stop(signum: int, _frame: object) -> None:
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    except KeyboardInterrupt:  # TrainingInterrupted too
        if world.main and not terminated:
            raise
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except USER_ERRORS as error:
        message = f"{world}: {error}"
        distributed.record_error(message)
        print_error(message)
        raise typer.Exit(EXIT_ERROR) from None
    except RuntimeError as error:
        if not distributed.is_peer_gone(error):
            raise
        raise typer.Exit(distributed.EXIT_PEER_GONE) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
