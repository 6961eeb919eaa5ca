"""Built-in components, one module each. Importing this package imports every module in it, and each
registers its component with ``@register``: adding a type is one new file and nothing else."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
