"""One module per method: its parameters and how it makes a row's prompt (PEFT's shape)."""
from .attempt import Attempt, AttemptConfig
from .pt import PromptTuning, PTConfig, init_prompt
from .vip import VIP, SampledVectorQuantize, VIPConfig

__all__ = ["PromptTuning", "PTConfig", "init_prompt", "Attempt", "AttemptConfig", "VIP", "VIPConfig", "SampledVectorQuantize"]
