"""Run folders: ``runs/<timestamp>-<task>/`` with ``config.json``, ``metrics.json``, ``checkpoint.pt`` and PNG plots.

A run folder is complete or visibly not:

- every file is written under a temporary name, flushed to disk and renamed into place, so a file that exists is
  whole (a full disk leaves no truncated ``checkpoint.pt``, only an error);
- ``metrics.json`` carries a ``status``: ``running`` from the start, then ``finished`` (written last, after the
  checkpoint and the plots), ``failed`` (with the error) or ``interrupted`` (Ctrl-C or SIGTERM, see
  :meth:`RunFolder.running`);
- the checkpoint's sha256 and size are recorded in ``metrics.json`` and checked when the run is loaded
  (``fivefold.train.load_run``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from fivefold.errors import RunError

__all__ = ["RunFolder", "RunInterrupted", "write_atomic"]


class RunInterrupted(KeyboardInterrupt):
    """Raised inside :meth:`RunFolder.running` when the process gets SIGTERM, or SIGINT (Ctrl-C) while Python's own
    handler is in place. ``signal_number`` says which signal; the command line exits with ``128 + signal_number``."""

    def __init__(self, signal_number: int) -> None:
        super().__init__(f"stopped by signal {signal.Signals(signal_number).name}")
        self.signal_number = signal_number


def write_atomic(target: Path, data: bytes) -> None:
    """Write ``data`` to ``target`` through a temporary file in the same folder, flushed and renamed into place:
    ``target`` either keeps its old content or gets all of ``data``. Raises ``RunError`` when the write fails."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise RunError(f"could not write {target}: {exc.strerror or exc}") from exc


def _prepare_root(root: Path) -> None:
    """Create ``root`` if needed; a one-line ``RunError`` if it is a file or cannot be written."""
    if root.exists() and not root.is_dir():
        raise RunError(f"runs directory {root} is a file, not a folder: pass --runs-dir a folder")
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise RunError(f"cannot create runs directory {root}: {exc.strerror or exc}") from None
    if not os.access(root, os.W_OK | os.X_OK):
        raise RunError(f"runs directory {root} is not writable: pass --runs-dir a folder you can write to")


class RunFolder:
    """A fresh folder for one run under ``root`` (default ``runs`` in the current directory).

    Use it as::

        run = RunFolder("cora-gcn", runs_dir)
        with run.running():
            run.write_json("config.json", config)
            ...train...
            run.save_checkpoint({"model_state": model.state_dict(), "config": config})
            run.plot_curves(history)
            run.finish({"final": final, "epochs": history})
    """

    def __init__(self, task: str, root: str | os.PathLike = "runs") -> None:
        root = Path(root)
        _prepare_root(root)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = root / f"{stamp}-{task}"
        suffix = 1
        while True:
            try:
                path.mkdir()
                break
            except FileExistsError:
                suffix += 1
                path = root / f"{stamp}-{task}-{suffix}"
            except OSError as exc:
                raise RunError(f"cannot create run folder {path}: {exc.strerror or exc}") from None
        self.path = path
        self.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.checkpoint: dict[str, Any] | None = None

    @classmethod
    def at(cls, path: str | os.PathLike) -> RunFolder:
        """The run folder ``path`` itself (created if missing, kept if there): for a run that resumes in the folder
        it checkpointed to, such as a distributed run restarted by torchrun."""
        path = Path(path)
        _prepare_root(path)
        run = cls.__new__(cls)
        run.path = path
        run.started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        run.checkpoint = None
        return run

    def write_json(self, name: str, payload: Any) -> Path:
        target = self.path / name
        write_atomic(target, json.dumps(payload, indent=2, sort_keys=True).encode())
        return target

    def write_text(self, name: str, text: str) -> Path:
        target = self.path / name
        write_atomic(target, text.encode())
        return target

    def set_status(self, status: str, **fields: Any) -> Path:
        """``metrics.json`` with only the status (and ``fields``): what a run that is not finished shows."""
        return self.write_json("metrics.json", {"status": status, "started": self.started, **fields})

    @contextlib.contextmanager
    def running(self) -> Iterator[RunFolder]:
        """Mark the run ``running``; on the way out an exception marks it ``failed`` (with the error) and Ctrl-C or
        SIGTERM marks it ``interrupted``; the exception is raised again. Inside, SIGTERM and Ctrl-C (unless SIGINT has a
        handler other than Python's own) raise :class:`RunInterrupted` (when called from the main thread; the
        previous handlers are restored after)."""
        previous: dict[int, Any] = {}
        armed, previous_alarm = False, None
        if threading.current_thread() is threading.main_thread():
            def on_signal(signal_number: int, frame: object) -> None:
                nonlocal armed, previous_alarm
                if hasattr(signal, "setitimer") and not armed:
                    # an exception raised while the signal lands inside a C callback is printed and dropped (numba's
                    # compiler calls back into Python through ctypes), and the run would go on: raise it again every
                    # half second until it has left the training loop
                    def again(number: int, frame: object) -> None:
                        raise RunInterrupted(signal_number)

                    previous_alarm, armed = signal.signal(signal.SIGALRM, again), True
                    signal.setitimer(signal.ITIMER_REAL, 0.5, 0.5)
                raise RunInterrupted(signal_number)

            previous[signal.SIGTERM] = signal.signal(signal.SIGTERM, on_signal)
            if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # its KeyboardInterrupt, dropped alike
                previous[signal.SIGINT] = signal.signal(signal.SIGINT, on_signal)

        def disarm() -> None:
            nonlocal armed
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, signal.SIG_DFL if previous_alarm is None else previous_alarm)
                armed = False

        try:
            self.set_status("running")
            yield self
        except KeyboardInterrupt as exc:
            disarm()
            self._mark("interrupted", error=str(exc) or "KeyboardInterrupt")
            raise
        except BaseException as exc:
            disarm()
            self._mark("failed", error=f"{type(exc).__name__}: {exc}")
            raise
        finally:
            disarm()
            for number, handler in previous.items():  # None: not set from Python; the default is the best guess
                signal.signal(number, signal.SIG_DFL if handler is None else handler)

    def _mark(self, status: str, error: str) -> None:
        with contextlib.suppress(RunError):  # a full disk may refuse even this; the original error is raised
            self.set_status(status, error=error, ended=time.strftime("%Y-%m-%dT%H:%M:%S%z"))

    def save_checkpoint(self, payload: dict[str, Any], name: str = "checkpoint.pt") -> Path:
        """``torch.save(payload)`` written atomically; its sha256 and size are kept for :meth:`finish`. The payload
        must load with ``torch.load(weights_only=True)``: tensors, numbers, strings, lists, tuples and dicts."""
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        data = buffer.getvalue()
        target = self.path / name
        write_atomic(target, data)
        self.checkpoint = {"file": name, "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        return target

    def finish(self, metrics: dict[str, Any]) -> Path:
        """Write the final ``metrics.json`` with ``status: finished`` (and the checkpoint's checksum): call it last."""
        ended = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        return self.write_json("metrics.json", {**metrics, "status": "finished", "started": self.started,
                                                "ended": ended, "checkpoint": self.checkpoint})

    def plot_curves(self, history: list[dict[str, float]], name: str = "curves.png", x: str = "epoch") -> Path:
        """Loss (left) and accuracy, ranking scores or errors (right) per epoch (or per ``x``, e.g. ``"step"``), for
        every ``*_loss`` / ``*_acc`` / ``*_ap`` / ``*_auc`` / ``*_rmse`` / ``*_mae`` key of ``history``."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [row[x] for row in history]
        fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
        for key in history[0]:
            values = [row[key] for row in history]
            if key.endswith("_loss"):
                ax_loss.plot(epochs, values, label=key)
            elif key.endswith(("_acc", "_ap", "_auc", "_rmse", "_mae")):
                ax_acc.plot(epochs, values, label=key)
        errors = any(key.endswith(("_rmse", "_mae")) for key in history[0])
        ax_loss.set(xlabel=x, ylabel="mean squared error" if errors else "cross-entropy", title="loss")
        scores = any(key.endswith(("_ap", "_auc")) for key in history[0])
        ax_acc.set(xlabel=x, ylabel="RMSE / MAE" if errors else "AP / ROC-AUC" if scores else "accuracy",
                   title="errors" if errors else "scores" if scores else "accuracy")
        for ax in (ax_loss, ax_acc):
            if ax.get_legend_handles_labels()[0]:
                ax.legend()
            ax.grid(alpha=0.3)
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, dpi=100, format="png")
        plt.close(fig)
        target = self.path / name
        write_atomic(target, buffer.getvalue())
        return target
