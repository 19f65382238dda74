"""The HTML page: form from the schema, server-rendered result, model card, strict CSP."""

import re
from html.parser import HTMLParser

import pytest

from ml.bundle import load_bundle, read_card

FORM = {"home_team": "Grêmio", "away_team": "Santos", "temperature": "18.5"}


class CspAudit(HTMLParser):
    """Collects what a `script-src 'self'; style-src 'self'` policy would block."""

    def __init__(self) -> None:
        super().__init__()
        self.violations: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        names = {name for name, _ in attrs}
        if tag == "script" and "src" not in names:
            self._in_script = True
            self.violations.append("inline <script>")
        if tag == "style":
            self.violations.append("<style> element")
        for name, value in attrs:
            if name == "style":
                self.violations.append(f"style attribute on <{tag}>")
            if name.startswith("on"):
                self.violations.append(f"{name} handler on <{tag}>")
            if name in ("src", "href") and value and re.match(r"(https?:)?//", value):
                self.violations.append(f"external {name} {value}")


def audit(html: str) -> list[str]:
    parser = CspAudit()
    parser.feed(html)
    return parser.violations


def test_form_is_built_from_the_record_schema(record_client):
    r = record_client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    html = r.text
    assert len(re.findall(r'<select[^>]*name="home_team"', html)) == 1
    assert len(re.findall(r'<select[^>]*name="away_team"', html)) == 1
    assert re.search(r'<input[^>]*name="temperature"[^>]*type="number"', html)
    assert '<option value="São Paulo"' in html
    # The two distinct selects start on different teams, so a plain submit is valid.
    home = re.search(r'name="home_team".*?<option value="([^"]+)" selected', html, re.S)[1]
    away = re.search(r'name="away_team".*?<option value="([^"]+)" selected', html, re.S)[1]
    assert home != away
    assert audit(html) == []


def test_submit_renders_probability_bars(record_client, record_bundle):
    r = record_client.post("/", data=FORM)
    assert r.status_code == 200
    html = r.text
    proba = load_bundle(record_bundle).predict_proba(
        {"home_team": ["Grêmio"], "away_team": ["Santos"], "temperature": [18.5]}
    )[0]
    shown = [float(v) for v in re.findall(r'data-probability="([^"]+)"', html)]
    assert shown == pytest.approx(list(proba))
    assert len(re.findall(r"<meter ", html)) == 3
    winner = ["Home win", "Draw", "Away win"][int(proba.argmax())]
    assert re.search(rf'id="predicted-label">{winner}<', html)
    # The choice survives the round trip.
    assert re.search(r'<option value="Grêmio" selected', html)
    assert audit(html) == []


def test_page_shows_the_model_card(record_client, record_bundle):
    html = record_client.get("/").text
    card = read_card(record_bundle)
    assert card["version"] in html
    assert "2003-03-29" in html and "2024-12-08" in html and "1,200 rows" in html
    assert "this model" in html and "base rate" in html
    assert "0.9800" in html and "1.0500" in html


def test_same_team_twice_is_refused_on_the_page(record_client):
    r = record_client.post("/", data={**FORM, "away_team": "Grêmio"})
    assert r.status_code == 422
    assert "must differ" in r.text
    assert "<meter" not in r.text


def test_unknown_team_on_the_page_suggests(record_client):
    r = record_client.post("/", data={**FORM, "home_team": "Gremio"})
    assert r.status_code == 422
    assert "Did you mean Grêmio?" in r.text


def test_bad_number_on_the_page(record_client):
    r = record_client.post("/", data={**FORM, "temperature": "warm"})
    assert r.status_code == 422 and "is not a number" in r.text
    r = record_client.post("/", data={k: v for k, v in FORM.items() if k != "temperature"})
    assert r.status_code == 422 and "field required" in r.text


def test_vector_form(vector_client):
    html = vector_client.get("/").text
    assert len(re.findall(r'<input[^>]*name="features"', html)) == 4
    r = vector_client.post("/", data={"features": ["1", "2", "3", "4"]})
    assert r.status_code == 200 and len(re.findall(r"<meter ", r.text)) == 2
    r = vector_client.post("/", data={"features": ["1", "2", "nan", "4"]})
    assert r.status_code == 422 and "finite" in r.text


def test_page_without_model(empty_client):
    r = empty_client.get("/")
    assert r.status_code == 503
    assert "No model loaded" in r.text and "no model at" in r.text
    assert empty_client.post("/", data=FORM).status_code == 503


def test_page_post_needs_a_form(record_client):
    r = record_client.post("/", json=FORM)
    assert r.status_code == 415


def test_css_is_served(record_client):
    r = record_client.get("/static/css/app.css")
    assert r.status_code == 200 and "meter" in r.text
