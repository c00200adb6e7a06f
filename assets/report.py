"""Report: the release's quarterly report (DIR/report/index.html and its PNGs), drawn from the published Parquet."""
import dagster as dg

from expectations.adapter import predicate
from pipelines.metadata import markdown_image
from pipelines.quality import check_results
from pipelines.resources import Settings

REPORT_COMPLETE = "report_has_every_chart_and_page"


@dg.asset(kinds={"matplotlib", "html"}, deps=["published_release"],
          check_specs=[dg.AssetCheckSpec(REPORT_COMPLETE, asset="quarterly_report")])
def quarterly_report(context: dg.AssetExecutionContext, settings: Settings):
    """The quarterly report: one self-contained HTML page plus one PNG per chart, in DIR/report/."""
    from pipelines.report import write_report  # matplotlib is imported by the one stage that draws

    rendered = write_report(settings.release)
    folder = settings.release / "report"
    missing = [n for n in [*rendered, "index.html"] if not (folder / n).stat().st_size] if folder.exists() else ["*"]
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(folder / "index.html")), "charts": len(rendered),
        **{name.removesuffix(".png"): markdown_image(png, title) for name, (title, png) in rendered.items()}})
    yield from check_results(context, settings.state, "report", "quarterly_report",
                             {None: [predicate(REPORT_COMPLETE, not missing, charts=len(rendered),
                                               missing=", ".join(missing) or "none")]})
