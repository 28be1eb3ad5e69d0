"""Templates: editors' Jinja2 files rendered to Markdown in a sandbox.

- ``Templates(root)``: the files of ``<root>/templates``; ``resolve``, ``render``,
  ``check``, ``sample_data``, ``usage`` (see ``templates.py``);
- ``kinds``: the contract, i.e. which variables each kind of template receives
  (declared by the content kinds, ``broadcaster.sources.kinds``);
- ``resolve``: the resolution order (group override, festival, channel, base);
- ``environment``: the sandbox and its limits; ``filters``: the Chinese filters;
- ``preview``: what a group would receive, per channel, split as it would be sent.
"""

from broadcaster.templating.environment import Limits
from broadcaster.templating.errors import TemplateError
from broadcaster.templating.kinds import kind_by_name
from broadcaster.templating.resolve import Resolution, Step, TemplateFile
from broadcaster.templating.templates import Templates

__all__ = [
    "Limits",
    "Resolution",
    "Step",
    "TemplateError",
    "TemplateFile",
    "Templates",
    "kind_by_name",
]
