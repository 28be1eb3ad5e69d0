"""``Templates``: the templates of one root, resolved, rendered in the sandbox, checked."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from jinja2 import TemplateError as JinjaError

from broadcaster.cleantext import clean_text
from broadcaster.config.groups import Group
from broadcaster.config.yamlfile import display_path
from broadcaster.errors import Problem, did_you_mean
from broadcaster.templating import kinds
from broadcaster.templating.context import build_context, local_now
from broadcaster.templating.environment import Limits, SandboxEnvironment
from broadcaster.templating.errors import TemplateError, problem
from broadcaster.templating.resolve import Resolution, Scan, TemplateFile, resolve, scan

# What rendering may raise from inside a template (besides Jinja's own errors):
# a filter given a bad value, a division by zero, a macro calling itself.
RENDER_ERRORS = (JinjaError, ArithmeticError, TypeError, ValueError, LookupError,
                 AttributeError, RecursionError)


class Templates:
    """The templates of ``<root>/templates``.

    Files are read when used, so edits show up without a restart; the folder is
    listed again only when its modification time changes, and a file is compiled
    again only when its own does (one environment, whose cache holds them).
    Checking, previews and sample data are imported when first used: a pass that
    only renders does not load them.
    """

    def __init__(self, root: Path, *, limits: Limits | None = None):
        self.root = Path(root)
        self.directory = self.root / "templates"
        self.env = SandboxEnvironment(self.directory, limits)
        self._kinds: dict[Path, tuple[int, str | None]] = {}
        self._index: tuple[int | None, Scan] | None = None

    # -- the files -------------------------------------------------------------
    def files(self) -> dict[str, TemplateFile]:
        """Every valid template file, by key (``weather``, ``weather.telegram``)."""
        return self._scan().files

    def partials(self) -> list[TemplateFile]:
        """Files named ``_*.md.j2``: pieces other templates include, never sent alone."""
        return self._scan().partials

    def bad_files(self) -> list[Problem]:
        """Files ending in ``.md.j2`` whose names are not valid template names."""
        return [Problem(display_path(p), None, None, why) for p, why in self._scan().bad]

    def _scan(self) -> Scan:
        # adding, removing or renaming a file changes the directory's mtime
        try:
            version = self.directory.stat().st_mtime_ns
        except OSError:
            version = None
        if self._index is None or self._index[0] != version:
            self._index = (version, scan(self.directory))
        return self._index[1]

    def names(self) -> list[str]:
        """Template names (channel variants folded into their name), sorted."""
        return sorted({tf.name for tf in self.files().values()})

    def kind_of(self, name: str) -> str:
        """The kind of template ``name``: see ``broadcaster.templating.kinds``."""
        files = self.files()
        base = name.split(".", 1)[0]
        tf = files.get(base) or next((f for f in files.values() if f.name == base), None)
        declared = self.declared_kind(tf) if tf else None
        return declared or kinds.kind_by_name(base)

    def declared_kind(self, tf: TemplateFile) -> str | None:
        """The ``{# kind: NAME #}`` a file declares (cached per file version)."""
        try:
            stat = tf.path.stat()
        except OSError:
            return None
        cached = self._kinds.get(tf.path)
        if cached and cached[0] == stat.st_mtime_ns:
            return cached[1]
        with tf.path.open(encoding="utf-8", errors="replace") as fh:
            kind = kinds.declared_kind(fh.read(512))
        self._kinds[tf.path] = (stat.st_mtime_ns, kind)
        return kind

    # -- resolving -------------------------------------------------------------
    def resolve(
        self,
        name: str,
        *,
        group: Group | None = None,
        channel: str | None = None,
        festival: str | None = None,
    ) -> Resolution:
        """The file that renders ``name`` (see ``resolve`` for the order) and the chain tried."""
        return resolve(self.files(), name, self.kind_of, group=group, channel=channel,
                       festival=festival)

    # -- rendering -------------------------------------------------------------
    def render(
        self,
        name: str,
        *,
        group: Group,
        data: dict[str, Any],
        now: datetime,
        festival: str | None = None,
        channel: str | None = None,
    ) -> str:
        """The Markdown message (stripped) template ``name`` gives for ``group``.

        ``channel`` defaults to the group's channel type; for a holiday template
        ``festival`` defaults to ``data["festival"]["key"]``. Raises
        ``TemplateError`` (file, line, reason) if it cannot be rendered.
        """
        festival = festival_of(data, festival)
        resolution = self.resolve(name, group=group, channel=channel, festival=festival)
        return self.render_resolved(resolution, group=group, data=data, now=now)

    def render_resolved(
        self, resolution: Resolution, *, group: Group, data: dict[str, Any], now: datetime
    ) -> str:
        if resolution.file is None:
            tried = ", ".join(s.candidate for s in resolution.chain if s.why != "group override")
            hint = did_you_mean(resolution.name, self.names(), " (see: templates list)")
            raise TemplateError([Problem(
                display_path(self.directory), None, None,
                f"no template for {resolution.name!r} (tried: {tried}){hint}",
            )])
        return self.render_file(resolution.file, kind=resolution.kind, group=group,
                                data=data, now=now)

    def render_file(
        self, tf: TemplateFile, *, kind: str, group: Group, data: dict[str, Any], now: datetime
    ) -> str:
        """Render one file as a template of ``kind``."""
        context = build_context(kind, group, now, data)
        try:
            template = self.env.get_template(tf.filename)
            text = clean_text(self.env.render(template, context)).strip()
        except RENDER_ERRORS as exc:
            raise TemplateError([problem(exc, tf.path, known=context,
                                         filters=self.env.filters)]) from None
        if not text:
            raise TemplateError([Problem(display_path(tf.path), None, None,
                                         "the message is empty")])
        return text

    def compile_problems(self, tf: TemplateFile) -> list[Problem]:
        """Syntax errors of one file (and of the files it includes or imports)."""
        try:
            self.env.get_template(tf.filename)
        except RENDER_ERRORS as exc:
            return [problem(exc, tf.path, filters=self.env.filters)]
        return []

    # -- sample data -------------------------------------------------------------
    def sample_data(
        self,
        kind: str,
        now: datetime | None = None,
        *,
        group: Group | None = None,
        festival: str | None = None,
        case: str | None = None,
    ) -> dict[str, Any]:
        """Realistic data of ``kind``, as of ``now`` in the group's timezone (``case``: one
        of the kind's named sample cases)."""
        from broadcaster.templating import samples  # start-up time: loaded when first used

        moment = now or datetime.now().astimezone()
        location = None
        if group is not None:
            moment = local_now(group, moment)
            location = group.location.name if group.location else None
        return samples.sample_data(kind, moment, location=location, festival=festival, case=case)

    # -- usage and checks --------------------------------------------------------
    def usage(self, groups: list[Group], extra_names: tuple[str, ...] = ()) -> dict[str, list[str]]:
        """Template key (``weather``, ``weather.telegram``) -> ids of the groups that use it."""
        from broadcaster.templating.usage import group_usage  # start-up time: loaded when first used

        return group_usage(self, groups, extra_names)

    def check(self, groups: list[Group], *, now: datetime | None = None,
              progress: Callable[[int, int], None] | None = None) -> list[Problem]:
        """Every problem of every template; see ``broadcaster.templating.check``."""
        from broadcaster.templating.check import check_templates  # start-up time: loaded when first used

        return check_templates(self, groups, now=now, progress=progress)


def festival_of(data: dict[str, Any], festival: str | None) -> str | None:
    """``festival``, by default the key of a holiday template's ``data["festival"]``."""
    if festival is None and isinstance(data.get("festival"), dict):
        return data["festival"].get("key")
    return festival
