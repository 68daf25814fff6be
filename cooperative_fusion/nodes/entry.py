"""Re-export of the node scaffold (``ros/node.py``) until the fusion and twin nodes derive from ``BaseNode``."""
from ..ros.node import BaseNode as SetupNode, spin_node

__all__ = ['SetupNode', 'spin_node']
