"""Regenerate seeds/province_boundaries.geojson from ECharts 4.9.0's China map (Apache-2.0).

    npm pack echarts@4.9.0            # -> echarts-4.9.0.tgz (holds package/map/json/china.json)
    python seeds/build_province_boundaries.py echarts-4.9.0.tgz

ECharts stores the coordinates in a compact encoding (each ring a string of zig-zag, delta-coded 16-bit
characters, scaled by 1024, starting from `encodeOffsets`); this script decodes it (the algorithm of ECharts'
`parseGeoJson.js`) and writes plain GeoJSON, coordinates rounded to 4 decimals (about 10 m), features sorted by
code, rings of fewer than 3 distinct points dropped. Each feature has `code` (6-digit GB/T 2260 province code), `name_zh` and `in_scope` (false for 台湾, 香港, 澳门,
drawn as land without data). Deterministic: the same input gives a byte-identical file.
"""
from __future__ import annotations

import io
import json
import sys
import tarfile
from pathlib import Path

OUT = Path(__file__).resolve().parent / "province_boundaries.geojson"
MEMBER = "package/map/json/china.json"
OUT_OF_SCOPE = {"710000", "810000", "820000"}
SOURCE = "ECharts 4.9.0 (npm echarts@4.9.0, map/json/china.json), Apache License 2.0"


def decode_ring(text: str, offset: list[int], scale: float = 1024.0) -> list[list[float]]:
    x0, y0 = offset
    ring = []
    for i in range(0, len(text), 2):
        x, y = ord(text[i]) - 64, ord(text[i + 1]) - 64
        x = (x >> 1) ^ (-(x & 1))
        y = (y >> 1) ^ (-(y & 1))
        x0, y0 = x0 + x, y0 + y
        ring.append([round(x0 / scale, 4), round(y0 / scale, 4)])
    if ring and ring[0] != ring[-1]:
        ring.append(list(ring[0]))
    return ring


def decode(data: dict) -> dict:
    scale = float(data.get("UTF8Scale") or 1024)
    features = []
    for feature in data["features"]:
        geometry = feature["geometry"]
        coords, offsets = geometry["coordinates"], geometry["encodeOffsets"]
        if geometry["type"] == "Polygon":
            polygons = [[decode_ring(r, o, scale) for r, o in zip(coords, offsets)]]
        else:
            polygons = [[decode_ring(r, o, scale) for r, o in zip(poly, offs)] for poly, offs in zip(coords, offsets)]
        # drop degenerate rings (fewer than 3 distinct points: slivers of tiny islets), then empty polygons
        polygons = [[r for r in poly if len(r) >= 4] for poly in polygons if len(poly[0]) >= 4]
        code = str(feature["properties"]["id"])
        features.append({"type": "Feature",
                         "properties": {"code": code, "name_zh": feature["properties"]["name"],
                                        "in_scope": code not in OUT_OF_SCOPE},
                         "geometry": {"type": "MultiPolygon", "coordinates": polygons}})
    features.sort(key=lambda f: f["properties"]["code"])
    return {"type": "FeatureCollection", "source": SOURCE, "features": features}


def read_china_json(path: Path) -> dict:
    if path.suffix == ".json":
        return json.loads(path.read_text(encoding="utf-8"))
    with tarfile.open(path) as tar:
        return json.load(io.TextIOWrapper(tar.extractfile(MEMBER), encoding="utf-8"))


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    OUT.write_text(json.dumps(decode(read_china_json(Path(argv[0]))), ensure_ascii=False, separators=(",", ":"))
                   + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
