"""The bundler that inlines the page's drawing modules for the notebook: order, scoping, refusals, styles."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from convlens.errors import ConfigError
from convlens.lab import jsbundle

STATIC = jsbundle.PACKAGE / "web" / "static"


def _sections(code: str) -> list[str]:
    return re.findall(r"^// ---- (\S+)$", code, re.M)


def test_a_widget_bundle_holds_each_module_once_dependencies_first() -> None:
    code = jsbundle.esm(jsbundle.PACKAGE / "widgets" / "static" / "explain.js")
    order = _sections(code)
    assert len(order) == len(set(order))
    draw = "web/static/js/draw/"
    for before, after in [("format.js", "grid.js"), ("colors.js", "grid.js"), ("grid.js", "conv_step.js")]:
        assert order.index(draw + before) < order.index(draw + after)
    assert order[-1] == "widgets/static/explain.js"
    # every import became a destructuring of an earlier module's exports; nothing left for a loader
    assert not re.search(r"^\s*(import|export)\b(?! default __cl_widgets_static_explain;)", code, re.M)
    assert "const { drawConvSteps } = __cl_web_static_js_draw_conv_step;" in code
    assert code.rstrip().endswith("export default __cl_widgets_static_explain;")
    # the drawing module is the page's file, verbatim apart from its import/export keywords
    source = (STATIC / "js" / "draw" / "grid.js").read_text(encoding="utf-8")
    assert source.replace("export function", "function").split("\n", 8)[-1] in code


def test_an_inline_script_renames_imports_and_keeps_module_scopes() -> None:
    code = jsbundle.script('import { fmtValue as f } from "./format.js";\nconsole.log(f(2.5));')
    assert code.startswith("(() => {")
    assert code.rstrip().endswith("})();")
    assert "const { fmtValue: f } = __cl_web_static_js_draw_format;" in code
    assert "return { fmtValue, fmtG, fmtInt, fmtPct, fmtBytes, fmtShape, fmtSize };" in code


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ('import x from "./format.js";', r"only one-line `import \{ \.\.\. \} from \"\./x\.js\";` is bundled"),
        ('import { a } from "lodash";', r"only one-line `import"),
        ('import { a } from "../../../../../../../etc/x.js";', r"which is not a file inside the convlens package"),
        ('import { a } from "./missing.js";', r"imports './missing.js', which is not a file inside"),
        (
            'import { fmtValue } from "./format.js";\nexport default 1;',
            r"only `export function\|const\|let\|class NAME`",
        ),
        ("export function f() {}", r"an inline script has nothing to export to"),
        ('import { a-b } from "./format.js";', r"cannot read the import 'a-b'"),
    ],
)
def test_what_the_bundler_refuses(source: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        jsbundle.script(source)


def test_an_import_cycle_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsbundle, "PACKAGE", tmp_path)
    (tmp_path / "a.js").write_text('import { b } from "./b.js";\nexport const a = 1;\n')
    (tmp_path / "b.js").write_text('import { a } from "./a.js";\nexport const b = 2;\n')
    with pytest.raises(ConfigError, match=r"jsbundle: import cycle a\.js -> b\.js -> a\.js"):
        jsbundle.script('import { a } from "./a.js";', tmp_path)


def test_the_styles_are_one_file_scoped_for_the_notebook() -> None:
    css = jsbundle.draw_css(".convlens-widget")
    assert ":root" not in css
    assert css.count(".convlens-widget {") == 1
    assert ".cl-grid {" in css
    # the page links the same file; app.css no longer holds a copy of the drawing rules
    assert '<link rel="stylesheet" href="/static/css/draw.css">' in (STATIC / "index.html").read_text(encoding="utf-8")
    assert ".cl-grid {" not in (STATIC / "css" / "app.css").read_text(encoding="utf-8")


def test_the_stylesheet_must_declare_its_variables_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    css = tmp_path / "draw.css"
    css.write_text(":root { --a: 1; }\n.x { color: red; }\n:root { --b: 2; }\n")
    monkeypatch.setattr(jsbundle, "DRAW_CSS", css)
    with pytest.raises(ConfigError, match=r"jsbundle: draw.css must declare its variables in one `:root \{` block"):
        jsbundle.draw_css(".somewhere-else")
