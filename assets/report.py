"""Report: the release's quarterly report (report/index.html and its PNGs), drawn from the published Parquet."""
import dagster as dg

from assets.support.checks import check_results, specs
from assets.support.metadata import markdown_image
from assets.support.settings import Settings
from assets.transforms.release import staging_dir
from expectations.outcomes import predicate

REPORT_COMPLETE = "report_has_every_chart_and_page"


@dg.asset(kinds={"matplotlib", "html"}, code_version="2", deps=["staged_release"],
          check_specs=specs("quarterly_report", {REPORT_COMPLETE: (
              "The page and every chart it names were written and are not empty", True)}))
def quarterly_report(context: dg.AssetExecutionContext, settings: Settings):
    """The quarterly report: one self-contained HTML page plus one PNG per chart, from the Parquet this run staged
    (or, materialised alone, the published release's)."""
    from assets.transforms.report_page import write_report  # matplotlib is imported by the one stage that draws

    staged = staging_dir(settings.state, context.run.run_id)
    source = staged if (staged / "indices.parquet").exists() else settings.directory
    rendered = write_report(source)
    folder = source / "report"
    missing = [n for n in [*rendered, "index.html"] if not (folder / n).stat().st_size] if folder.exists() else ["*"]
    yield dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(settings.directory / "report" / "index.html")), "charts": len(rendered),
        **{name.removesuffix(".png"): markdown_image(png, title) for name, (title, png) in rendered.items()}})
    yield from check_results(context, settings.state, "report", "quarterly_report",
                             {None: [predicate(REPORT_COMPLETE, not missing, charts=len(rendered),
                                               missing=", ".join(missing) or "none")]})
