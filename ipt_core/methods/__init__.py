"""One module per method: its parameters and how it makes a row's prompt (PEFT's shape)."""
from .pt import PromptTuning, PTConfig, init_prompt

__all__ = ["PromptTuning", "PTConfig", "init_prompt"]
