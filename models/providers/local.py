"""A transformers model on this machine's CPU (the [local] extra)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from autogen_core.models import ChatCompletionClient

from models.providers.base import Provider, family_and_info, plan_for
from models.spec import ModelSpec, Tier

if TYPE_CHECKING:
    from config.settings import Settings


class LocalProvider(Provider):
    name = "local"
    label = "local transformers model (CPU)"
    env = ("LOCAL_MODEL",)
    needs = "the [local] extra (pip install -e '.[local]')"
    hint = "install the [local] extra"
    pricing_id = None  # costs nothing

    def default_model(self, tier: Tier, settings: Settings) -> str | None:
        return settings.local_model  # one CPU model, whatever the tier

    def model(self, settings: Settings, spec: ModelSpec | None) -> str:
        """The model a run would load, resolved as for every provider (LLM_MODEL, the team's name, LOCAL_MODEL)."""
        from models.providers import resolve_model

        return resolve_model(spec or ModelSpec(), self.name, settings)

    def is_configured(self, settings: Settings, spec: ModelSpec | None = None) -> bool:
        import models.providers as registry  # looked up at call time: tests replace `local_available`
        from models.local_model import local_problem

        # Configured means it can run now: with the extra but without the weights (and no way to fetch them),
        # `auto` must fail at once with the one line saying what to do, not start a download that cannot finish.
        return registry.local_available() and local_problem(self.model(settings, spec)) is None

    def not_configured_reason(self, settings: Settings, spec: ModelSpec | None = None) -> str:
        from models.local_model import local_problem

        reason = local_problem(self.model(settings, spec))
        if reason:
            return f"LLM provider 'local' cannot run: {reason}"
        return super().not_configured_reason(settings, spec)

    async def prepare(self, model: str, spec: ModelSpec, settings: Settings) -> None:
        # Loading weights takes seconds (16 s for SmolLM2's GGUF on two cores): in a worker thread, so the UI's
        # other sessions keep going; `build` then finds the model in the process cache.
        import asyncio

        from models.local_model import load_model, resolve_local

        source, _ = resolve_local(model)
        if source is not None and source.on_disk:
            await asyncio.to_thread(load_model, source)

    def build(self, model: str, spec: ModelSpec, settings: Settings) -> ChatCompletionClient:
        import models.local_model as local_model

        family, info = family_and_info(model, spec)
        plan = plan_for(model, family, spec, allow_verbosity=False)
        max_new_tokens = spec.max_output_tokens or 512
        temperature = plan.temperature or 0.0
        return local_model.build_local_client(
            model, model_info=info, max_new_tokens=max_new_tokens, temperature=temperature
        )


PROVIDER = LocalProvider()
