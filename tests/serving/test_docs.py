"""/docs and /redoc work without the network: every asset they load is served by the API."""

from __future__ import annotations

import re

import pytest


@pytest.mark.parametrize(("page", "marker"), [("/docs", "SwaggerUIBundle"), ("/redoc", "<redoc")])
def test_the_docs_pages_load_their_assets_from_the_api_itself(client, page, marker):
    response = client.get(page)
    assert response.status_code == 200
    html = response.text
    assert marker in html
    assert "cdn." not in html and "fonts.googleapis" not in html, "an asset would come from the network"
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert assets, html
    for asset in assets:
        assert asset.startswith("/"), f"{page} loads {asset} from elsewhere"
        fetched = client.get(asset)
        assert fetched.status_code == 200, asset
        assert len(fetched.content) > 1_000, asset  # the real bundle, not an error page
    assert client.get("/openapi.json").status_code == 200


def test_the_docs_assets_are_not_api_operations(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert not [path for path in paths if path.startswith(("/docs", "/redoc", "/static"))]
