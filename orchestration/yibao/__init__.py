"""Yibao (医保): a regulatory analytics warehouse for China's basic medical insurance."""

__version__ = "0.1.0"
