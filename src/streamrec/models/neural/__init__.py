"""Torch recommenders and the shared training engine (trainer, losses, base class).

Models register themselves on import; :func:`streamrec.models.zoo.available` imports
them. Import-time cost: torch.
"""
