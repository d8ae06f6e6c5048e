"""Running studies: the keyed, resumable stage runner, the compilation cache and multi-process jobs."""
