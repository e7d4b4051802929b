"""Templates written by marketers: Jinja2's sandbox, one file per message and locale.

An email `templates/email/<name>.<locale>.html` (autoescaped) extends a layout and fills the blocks `subject`,
`preheader` and `body`; the text part is derived from the HTML. The subject and the preheader come out as plain text
(plain_text): a header and an inbox preview show no HTML entities and carry no line break. An SMS
`templates/sms/<name>.<locale>.txt` is plain text (not escaped: nothing renders it as HTML).
"""

from __future__ import annotations

import html as entities
import re
from functools import lru_cache
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, NamedTuple

from shared.sources.products import web_url

if TYPE_CHECKING:
    from css_inline import CSSInliner
    from jinja2 import Template
    from jinja2.runtime import Context
    from jinja2.sandbox import SandboxedEnvironment

LOCALES = ("fr", "en")
DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "templates"


class TemplateProblem(ValueError):
    """A template that cannot render, with its name and line."""


class RenderedEmail(NamedTuple):
    subject: str
    preheader: str
    html: str
    text: str
    locale: str


@lru_cache(maxsize=4)
def environment(root: Path = DEFAULT_ROOT) -> SandboxedEnvironment:
    """Built once per container, Jinja with it: loaded by the first render, not by every handler importing this
    module (the act function's other steps, the subscription function's POSTs; about 30 ms of a cold start)."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    env = SandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    # `{{ url | web_url }}`: an http(s) URL or None. Autoescaping does not make an href safe; the sources already
    # clean product links (shared.sources.products), this also covers events recorded before they did.
    env.filters["web_url"] = web_url
    return env


@lru_cache(maxsize=4)
def text_environment(root: Path = DEFAULT_ROOT) -> SandboxedEnvironment:
    """For SMS: the same sandbox without HTML escaping (an apostrophe must stay an apostrophe on a phone)."""
    from jinja2 import FileSystemLoader, StrictUndefined
    from jinja2.sandbox import SandboxedEnvironment

    return SandboxedEnvironment(
        loader=FileSystemLoader(str(root)),
        autoescape=False,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )


def template_name(name: str, locale: str, root: Path = DEFAULT_ROOT, kind: Literal["email", "sms"] = "email") -> str:
    """The file for this locale, falling back to the other shipped locale."""
    suffix = "txt" if kind == "sms" else "html"
    for candidate in (locale, *[other for other in LOCALES if other != locale]):
        path = f"{kind}/{name}.{candidate}.{suffix}"
        if (root / path).is_file():
            return path
    what = "SMS" if kind == "sms" else kind
    raise TemplateProblem(f"no {what} template {name!r} in any locale ({', '.join(LOCALES)})")


class _TextExtractor(HTMLParser):
    BREAKS: ClassVar[frozenset[str]] = frozenset({"p", "br", "div", "h1", "h2", "h3", "li", "tr", "table"})

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.skip = 0
        self.href: str | None = None
        self.link_start = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("style", "head", "title"):
            self.skip += 1
        if tag in self.BREAKS:
            self.parts.append("\n")
        if tag == "a":
            self.href = dict(attrs).get("href")
            self.link_start = len(self.parts)
        if tag == "li":
            self.parts.append("- ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "head", "title"):
            self.skip -= 1
        if tag == "a" and self.href:
            if "".join(self.parts[self.link_start :]).strip():  # a link around an image only says nothing in text
                self.parts.append(f" ({self.href})")
            self.href = None
        if tag in self.BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    extractor = _TextExtractor()
    extractor.feed(html)
    lines = (line.strip() for line in "".join(extractor.parts).splitlines())
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"


# C0 and C1 controls (CR, LF, NUL, tab, escape...) and the Unicode line and paragraph separators.
_CONTROLS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def plain_text(rendered: str) -> str:
    """The subject (or preheader) of an autoescaped template as plain text: entities decoded once, so
    `O'Brien & Co` reads as written (not `O&#39;Brien &amp; Co`); control characters gone (a CR or LF from a
    contact's name would end the header: header injection), spaces collapsed."""
    text = _CONTROLS.sub(" ", entities.unescape(rendered))
    return re.sub(" {2,}", " ", text).strip(" ")


@lru_cache(maxsize=1)
def _inliner() -> CSSInliner:
    import css_inline  # here, not at import time: only a function that renders an email pays for it

    # The <style> block is kept too, for its @media rules (0.11 is the last release with a manylinux2014 arm64 wheel,
    # which `sam build` can fetch without a container; later ones can keep the @media rules alone). A <link>
    # stylesheet is dropped, never fetched at send time.
    return css_inline.CSSInliner(keep_style_tags=True, load_remote_stylesheets=False)


def inline_css(html: str) -> str:
    """Gmail and Outlook drop or mangle <style>: its rules are copied into each element's style attribute (which
    wins where both set a property); the <style> block stays for the clients that honour it and its @media rules."""
    return _inliner().inline(html)


def render_email(
    name: str, locale: str, context: dict[str, Any], root: Path = DEFAULT_ROOT, subject: str | None = None
) -> RenderedEmail:
    """The email for a person; `subject`: plain text in place of the template's (a campaign's A/B variant)."""
    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError  # loaded by environment()

    path = template_name(name, locale, root)
    context = {**context, "locale": path.split(".")[-2]}
    env = environment(root)
    try:
        template = env.get_template(path)
        ctx = template.new_context(context)
        override, subject = subject, plain_text(_block(template, "subject", ctx))
        preheader = plain_text(_block(template, "preheader", ctx))  # the layout escapes it once, in the HTML
        html = template.render({**context, "preheader": preheader})
        inlined = inline_css(html)
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"{error.filename or error.name}:{error.lineno}: {error.message}") from None
    except TemplateNotFound as error:
        raise TemplateProblem(f"{path}: includes a missing template {error.name!r}") from None
    except TemplateError as error:
        raise TemplateProblem(f"{path}:{_line_of(error)}: {error}") from None
    except Exception as error:  # a template calling something wrongly: still the marketer's file and line
        raise TemplateProblem(f"{path}:{_line_of(error)}: {type(error).__name__}: {error}") from None
    if not subject:
        raise TemplateProblem(f"{path}: the subject block is missing or empty")
    return RenderedEmail(
        subject=plain_text(override) if override else subject,
        preheader=preheader,
        html=inlined,
        text=html_to_text(html),
        locale=context["locale"],
    )


class RenderedSms(NamedTuple):
    text: str
    locale: str


def render_sms(name: str, locale: str, context: dict[str, Any], root: Path = DEFAULT_ROOT) -> RenderedSms:
    """The SMS text as written, without surrounding blank lines; errors name the file and line."""
    from jinja2 import TemplateError, TemplateNotFound, TemplateSyntaxError  # loaded by environment()

    path = template_name(name, locale, root, kind="sms")
    context = {**context, "locale": path.split(".")[-2]}
    try:
        text = text_environment(root).get_template(path).render(context).strip()
    except TemplateSyntaxError as error:
        raise TemplateProblem(f"{path}:{error.lineno}: {error.message}") from None
    except TemplateNotFound as error:
        raise TemplateProblem(f"{path}: includes a missing template {error.name!r}") from None
    except TemplateError as error:
        raise TemplateProblem(f"{path}:{_line_of(error)}: {error}") from None
    except Exception as error:  # a template calling something wrongly: still the marketer's file and line
        raise TemplateProblem(f"{path}:{_line_of(error)}: {type(error).__name__}: {error}") from None
    if not text:
        raise TemplateProblem(f"{path}: the SMS is empty")
    return RenderedSms(text=text, locale=context["locale"])


def _block(template: Template, name: str, context: Context) -> str:
    if name not in template.blocks:
        return ""
    try:
        return "".join(template.blocks[name](context)).strip()
    except Exception:
        template.environment.handle_exception()  # re-raises with the template's own line numbers


def _line_of(error: BaseException) -> str:
    """The template line of a render error, read from the traceback Jinja rewrites to point at templates."""
    tb = error.__traceback__
    line = "?"
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith((".html", ".txt")):
            line = str(tb.tb_lineno)
        tb = tb.tb_next
    return line


def render_page(name: str, locale: str, context: dict[str, Any], root: Path = DEFAULT_ROOT) -> str:
    """A public page (unsubscribe ...) in the visitor's language, falling back to the other one."""
    chosen = locale if (root / "pages" / f"{name}.{locale}.html").is_file() else LOCALES[0]
    return environment(root).get_template(f"pages/{name}.{chosen}.html").render(context)
