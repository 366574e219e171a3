"""rlbook: the small library behind the book, from the policy gradient to PPO.

Every chapter imports from here; every function says in its docstring which chapter derives it.
Importing the package has no side effects: seeds are set explicitly with :func:`rlbook.utils.set_seed`.
"""

__version__ = "0.1.0"
