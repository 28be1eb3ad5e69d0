"""Content ``template``: a job that names its own template (``template: NAME``).

Its ``options`` are any mapping: the template receives them as ``vars``. Every
targeted group gets the rendered template, each time the job fires. A template
that no content kind claims by name is of this kind (``announce --template`` uses
it too, with ``--var`` as its ``vars``).
"""

from __future__ import annotations

from broadcaster.sources.kinds import ContentKind, RunContext, TemplateKind, register

TEMPLATE = TemplateKind("template", data=("vars",), fields=("vars",),
                        sample=lambda now, **_: {"vars": {}}, defaults={"vars": {}})


@register
class Template(ContentKind):
    name = "template"
    options = None          # any: they are the template's vars
    templates = (TEMPLATE,)

    def run(self, ctx: RunContext) -> None:
        ctx.send(ctx.job.template, ctx.targets, {"vars": dict(ctx.job.options)})
