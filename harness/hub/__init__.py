"""The Hugging Face Hub: whether it is reachable and what is cached, suite locks, and checking task cards against their hub sources."""
