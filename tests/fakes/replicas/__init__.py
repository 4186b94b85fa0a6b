"""Strict local replicas of the model APIs: they accept only what the real API accepts (from its documentation)
and answer in its exact wire format, streaming included. One module per API; shared plumbing in `common`."""

from tests.fakes.replicas.anthropic_messages import CLAUDE_MODELS, AnthropicReplica, ClaudeModel
from tests.fakes.replicas.common import Rejection, ReplicaRequest, describe_rejection
from tests.fakes.replicas.gemini_openai import GEMINI_MODELS, GeminiModel, GeminiReplica
from tests.fakes.replicas.hf_router import HF_MODELS, HFModel, HFProvider, HFRouterReplica
from tests.fakes.replicas.openai_chat import OPENAI_MODELS, OpenAIModel, OpenAIReplica

__all__ = [
    "CLAUDE_MODELS",
    "GEMINI_MODELS",
    "HF_MODELS",
    "OPENAI_MODELS",
    "AnthropicReplica",
    "ClaudeModel",
    "GeminiModel",
    "GeminiReplica",
    "HFModel",
    "HFProvider",
    "HFRouterReplica",
    "OpenAIModel",
    "OpenAIReplica",
    "Rejection",
    "ReplicaRequest",
    "describe_rejection",
]
