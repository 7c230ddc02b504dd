"""A lazily loaded model shared by everything in one process (CLI run, server, eval).

Loading happens once, on first use, off whatever thread asked; a failure is remembered so
the user is told once and rustc's suggestions keep being served. Importing this module does
not import torch.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, cast

from learner.config import Settings
from learner.errors import SleepyCoderError
from learner.progress import Progress, no_progress

if TYPE_CHECKING:
    from learner.model.runtime import ModelRuntime


class ModelUnavailable(SleepyCoderError):
    """The model tier is off or failed to load; ``str()`` says why in one line."""


class RuntimeHandle:
    """Loads the configured model at most once; ``state`` is one of not-loaded/loading/ready/failed/off."""

    def __init__(self, settings: Settings, progress: Progress = no_progress) -> None:
        self.settings = settings
        self.progress = progress
        self._lock = threading.Lock()
        self._runtime: ModelRuntime | None = None
        self.error: str | None = None
        self.state = "off" if not settings.model_enabled else "not-loaded"
        #: When a failed connection to a server may be tried again (the remote backend only).
        self._retry_at = 0.0

    def get(self) -> ModelRuntime:
        if not self.settings.model_enabled:
            raise ModelUnavailable("the model tier is turned off (model_enabled = false)")
        with self._lock:
            if self._runtime is not None:
                return self._runtime
            if self.settings.uses_remote_backend:
                if self.error is not None and time.monotonic() < self._retry_at:
                    raise ModelUnavailable(self.error)  # asked again only after a pause: never hangs
                return self._connect()
            if self.error is not None:
                raise ModelUnavailable(self.error)
            self.state = "loading"
            try:
                from learner.model.runtime import ModelLoadError, load_runtime
            except ImportError as exc:
                self.error = f"the model tier is not installed ({exc.name}); pip install 'sleepy-coder[ml,model]'"
                self.state = "failed"
                raise ModelUnavailable(self.error) from exc
            try:
                self._runtime = load_runtime(self.settings, self.progress)
            except ModelLoadError as exc:  # load_runtime turns every loading failure into this
                self.error = str(exc)
                self.state = "failed"
                raise ModelUnavailable(self.error) from exc
            self.state = "ready"
            return self._runtime

    def _connect(self) -> ModelRuntime:
        """The OpenAI-compatible server as the runtime. Unlike a local model, a server that is down
        now may be up on the next request, so a failure is not remembered (the client itself stops
        asking a server that failed for a while, so this never hangs the editor)."""
        from learner.model.remote import DOWN_FOR_S, OpenAIRuntime

        self.state = "loading"
        try:
            remote = OpenAIRuntime(self.settings)
        except SleepyCoderError as exc:  # a bad setting, a server that is down or serves no such model
            self.error = str(exc)
            self.state = "failed"
            self._retry_at = time.monotonic() + DOWN_FOR_S
            raise ModelUnavailable(self.error) from exc
        self.error = None
        self.state = "ready"
        # The remote runtime has the interface the fix sources use (generate, generate_batch, model_name).
        self._runtime = cast("ModelRuntime", remote)
        return self._runtime

    @property
    def loaded(self) -> ModelRuntime | None:
        return self._runtime

    @property
    def available(self) -> bool:
        """Worth offering a model fix: on, and not failed (a server that failed is tried again after a pause)."""
        if not self.settings.model_enabled:
            return False
        if self.state != "failed":
            return True
        return self.remote and time.monotonic() >= self._retry_at

    @property
    def remote(self) -> bool:
        """Fixes come from a server: there is no local model to attach adapters to (the server has them)."""
        return self.settings.uses_remote_backend
