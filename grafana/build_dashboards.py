#!/usr/bin/env python3
"""Builds the four Grafana dashboards in grafana/dashboards/ from the compact
definitions below, so that every panel gets a unit, a description, thresholds,
a datasource and a grid position that does not overlap another.

    python3 grafana/build_dashboards.py          # write the JSON files
    python3 grafana/build_dashboards.py --check  # fail if they are stale

The tests run every expression below against the local stack (with the
template variables substituted) and parse them all as MetricsQL.
"""
import json
import pathlib
import sys

DATASOURCE = {"type": "prometheus", "uid": "victoriametrics"}
OUT = pathlib.Path(__file__).parent / "dashboards"

# Panel kinds: (grid width, grid height).
SIZES = {"stat": (6, 4), "gauge": (6, 8), "timeseries": (12, 8), "table": (12, 8), "heatmap": (12, 8)}


def thresholds(*steps):
    """steps: (value or None for the base, color)."""
    return {"mode": "absolute", "steps": [{"value": v, "color": c} for v, c in steps]}


OK = thresholds((None, "green"))
LATENCY = thresholds((None, "green"), (0.5, "yellow"), (1, "red"))
PERCENT_ERR = thresholds((None, "green"), (1, "yellow"), (5, "red"))
PERCENT_OK = thresholds((None, "red"), (95, "yellow"), (99, "green"))


def panel(kind, title, description, unit, targets, thr=OK, instant=False, legend=None):
    """targets: list of (expr, legendFormat)."""
    return {
        "kind": kind,
        "title": title,
        "description": description,
        "unit": unit,
        "thresholds": thr,
        "instant": instant,
        "targets": targets,
    }


def variable(name, label, query, multi=False):
    return {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "query": {"query": query, "refId": f"{name}-var"},
        "definition": query,
        "refresh": 2,
        "multi": multi,
        "includeAll": multi,
        "allValue": ".*" if multi else None,
        "sort": 1,
    }


DASHBOARDS = [
    {
        "uid": "promgate-global",
        "title": "Global Infrastructure Overview",
        "description": "Health of the whole monitoring fleet at a glance: ingestion, agents, targets.",
        "variables": [],
        "panels": [
            panel("stat", "Samples ingested per second", "Rows VictoriaMetrics inserts per second, all clusters.", "short",
                  [('sum(rate(vm_rows_inserted_total{job="vminsert"}[5m]))', "samples/s")]),
            panel("stat", "Active vmagents", "vmagents whose self-scrape succeeds (six clusters and the receiver-scraper).", "none",
                  [('count(up{job="vmagent"} == 1)', "agents")], thresholds((None, "red"), (6, "yellow"), (7, "green"))),
            panel("stat", "Targets down", "Scrape targets whose last scrape failed, across all clusters.", "none",
                  [("count(up == 0) or vector(0)", "down")], thresholds((None, "green"), (1, "red"))),
            panel("stat", "Clusters reporting", "Clusters whose vmagent sends data.", "none",
                  [('count(count by (cluster) (up{job="vmagent"}))', "clusters")], thresholds((None, "red"), (6, "yellow"), (7, "green"))),
            panel("timeseries", "Ingestion rate by region", "Samples per second each region's agents push to VictoriaMetrics.", "short",
                  [("sum by (region) (rate(vmagent_remotewrite_rows_pushed_after_relabel_total[5m]))", "{{region}}")]),
            panel("timeseries", "Ingestion rate by environment", "Samples per second pushed per environment.", "short",
                  [("sum by (env) (rate(vmagent_remotewrite_rows_pushed_after_relabel_total[5m]))", "{{env}}")]),
            panel("table", "Cluster status", "Targets up and in all, per cluster.", "none",
                  [("sum by (env, region, cluster) (up)", "up"), ("count by (env, region, cluster) (up)", "targets")],
                  instant=True),
            panel("timeseries", "Samples scraped per cluster", "Samples in the latest scrape of every target, summed per cluster.", "short",
                  [("sum by (cluster) (scrape_samples_scraped)", "{{cluster}}")]),
        ],
    },
    {
        "uid": "promgate-red",
        "title": "Application Performance (RED)",
        "description": "Rate, errors and duration of the services, per environment and cluster.",
        "variables": [
            variable("env", "Environment", "label_values(http_requests_total, env)"),
            variable("cluster", "Cluster", 'label_values(http_requests_total{env="$env"}, cluster)', multi=True),
        ],
        "panels": [
            panel("timeseries", "Request rate by service and method", "HTTP requests per second.", "reqps",
                  [('sum by (service, method) (rate(http_requests_total{env="$env", cluster=~"$cluster"}[5m]))', "{{service}} {{method}}")]),
            panel("gauge", "Error rate", "Share of requests answered 5xx over the last 5 minutes.", "percent",
                  [('100 * sum(rate(http_requests_total{env="$env", cluster=~"$cluster", status=~"5.."}[5m])) / sum(rate(http_requests_total{env="$env", cluster=~"$cluster"}[5m]))', "errors")],
                  PERCENT_ERR),
            panel("timeseries", "Error rate by service", "Share of each service's requests answered 5xx.", "percent",
                  [('100 * sum by (service) (rate(http_requests_total{env="$env", cluster=~"$cluster", status=~"5.."}[5m])) / sum by (service) (rate(http_requests_total{env="$env", cluster=~"$cluster"}[5m]))', "{{service}}")],
                  PERCENT_ERR),
            panel("heatmap", "Latency distribution", "Requests per second by latency bucket.", "s",
                  [('sum by (le) (rate(http_request_duration_seconds_bucket{env="$env", cluster=~"$cluster"}[5m]))', "{{le}}")]),
            panel("timeseries", "Latency percentiles", "p50, p95 and p99 of request latency, all services.", "s",
                  [(f'histogram_quantile({q}, sum by (le) (rate(http_request_duration_seconds_bucket{{env="$env", cluster=~"$cluster"}}[5m])))', f"p{int(q * 100)}")
                   for q in (0.5, 0.95, 0.99)], LATENCY),
            panel("table", "Top 10 slowest endpoints", "Endpoints by p95 latency over the last 5 minutes.", "s",
                  [('topk(10, histogram_quantile(0.95, sum by (service, route, le) (rate(http_request_duration_seconds_bucket{env="$env", cluster=~"$cluster"}[5m]))))', "{{service}} {{route}}")],
                  LATENCY, instant=True),
            panel("timeseries", "Database query p95 by operation", "95th percentile of database query time.", "s",
                  [('histogram_quantile(0.95, sum by (operation, le) (rate(app_database_queries_duration_seconds_bucket{env="$env", cluster=~"$cluster"}[5m])))', "{{operation}}")],
                  thresholds((None, "green"), (0.05, "yellow"), (0.1, "red"))),
            panel("timeseries", "Queue size", "Jobs waiting per queue.", "short",
                  [('sum by (queue) (app_queue_size{env="$env", cluster=~"$cluster"})', "{{queue}}")],
                  thresholds((None, "green"), (100, "yellow"), (500, "red"))),
        ],
    },
    {
        "uid": "promgate-stack",
        "title": "Monitoring Stack Health",
        "description": "vmagent remote-write, scraping, VictoriaMetrics components and promgate.",
        "variables": [
            variable("cluster", "Cluster", 'label_values(up{job="vmagent"}, cluster)', multi=True),
        ],
        "panels": [
            panel("timeseries", "Remote-write latency", "p90, p95 and p99 of vmagent remote-write request time to vminsert.", "s",
                  [(f'histogram_quantile({q}, sum by (vmrange) (rate(vmagent_remotewrite_duration_seconds_bucket{{cluster=~"$cluster"}}[5m])))', f"p{int(q * 100)}")
                   for q in (0.90, 0.95, 0.99)], LATENCY),
            panel("timeseries", "Remote-write pending bytes", "Bytes queued in each agent's persistent queue, not yet sent.", "bytes",
                  [('sum by (cluster) (vmagent_remotewrite_pending_data_bytes{cluster=~"$cluster"})', "{{cluster}}")],
                  thresholds((None, "green"), (1e6, "yellow"), (1e8, "red"))),
            panel("timeseries", "Remote-write success rate", "Share of remote-write requests answered 2xx.", "percent",
                  [('100 * sum by (cluster) (rate(vmagent_remotewrite_requests_total{cluster=~"$cluster", status_code="2XX"}[5m])) / sum by (cluster) (rate(vmagent_remotewrite_requests_total{cluster=~"$cluster"}[5m]))', "{{cluster}}")],
                  PERCENT_OK),
            panel("timeseries", "Scrape duration by cluster", "Slowest scrape per cluster.", "s",
                  [('max by (cluster) (scrape_duration_seconds{cluster=~"$cluster"})', "{{cluster}}")], LATENCY),
            panel("table", "VictoriaMetrics components", "Scrape health of vminsert, vmselect, vmstorage and vmalert.", "none",
                  [('up{job=~"vminsert|vmselect|vmstorage|vmalert"}', "{{job}} {{instance}}")],
                  thresholds((None, "red"), (1, "green")), instant=True),
            panel("timeseries", "Storage size", "Bytes on disk per vmstorage node.", "bytes",
                  [('sum by (instance) (vm_data_size_bytes{job="vmstorage"})', "{{instance}}")]),
            panel("timeseries", "Insert and select request duration", "p99 of request time per component and path.", "s",
                  [('max by (job, path) (vm_request_duration_seconds{job=~"vminsert|vmselect", quantile="0.99"})', "{{job}} {{path}}")],
                  LATENCY),
            panel("timeseries", "Slow inserts", "Rows per second that missed the index cache (a sign of too little RAM for the series count).", "short",
                  [('sum by (instance) (rate(vm_slow_row_inserts_total{job="vmstorage"}[5m]))', "{{instance}}")],
                  thresholds((None, "green"), (10, "yellow"), (100, "red"))),
            panel("timeseries", "promgate live series", "Series promgate holds from the legacy senders.", "short",
                  [("sum(promgate_live_series)", "live series")]),
            panel("timeseries", "promgate rejected samples", "Samples per second promgate refused, by reason.", "short",
                  [("sum by (reason) (rate(promgate_samples_rejected_total[5m]))", "{{reason}}")],
                  thresholds((None, "green"), (0.01, "red"))),
        ],
    },
    {
        "uid": "promgate-latency",
        "title": "Cross-Region Latency",
        "description": "Synthetic probes between regions, and the remote-write latency each region sees.",
        "variables": [],
        "panels": [
            panel("timeseries", "Probe round trip by path", "Blackbox probe duration from each source region to each target region.", "s",
                  [('avg by (source_region, target_region) (probe_duration_seconds{job="blackbox"})', "{{source_region}} -> {{target_region}}")],
                  thresholds((None, "green"), (0.2, "yellow"), (0.5, "red"))),
            panel("timeseries", "Remote-write latency p95 by region", "95th percentile of remote-write request time, per agent region.", "s",
                  [("histogram_quantile(0.95, sum by (region, vmrange) (rate(vmagent_remotewrite_duration_seconds_bucket[5m])))", "{{region}}")],
                  LATENCY),
            panel("stat", "Probe success rate by source", "Share of successful probes per source region.", "percent",
                  [('100 * avg by (source_region) (probe_success{job="blackbox"})', "{{source_region}}")], PERCENT_OK),
            panel("heatmap", "Probe duration distribution", "How probe durations spread over the last 5 minutes.", "s",
                  [('sum by (vmrange) (histogram_over_time(probe_duration_seconds{job="blackbox"}[5m]))', "{{vmrange}}")]),
            panel("table", "Slowest paths", "The five slowest region pairs over the last 5 minutes.", "s",
                  [('topk(5, avg by (source_region, target_region) (avg_over_time(probe_duration_seconds{job="blackbox"}[5m])))', "{{source_region}} -> {{target_region}}")],
                  thresholds((None, "green"), (0.2, "yellow"), (0.5, "red")), instant=True),
        ],
    },
]


def layout(panels):
    """Places panels left to right, wrapping at 24 columns; returns Grafana panels."""
    out, x, y, row_h = [], 0, 0, 0
    for i, p in enumerate(panels, start=1):
        w, h = SIZES[p["kind"]]
        if x + w > 24:
            x, y, row_h = 0, y + row_h, 0
        targets = []
        for j, (expr, legend) in enumerate(p["targets"]):
            t = {"refId": chr(ord("A") + j), "datasource": DATASOURCE, "expr": expr, "legendFormat": legend}
            if p["kind"] == "heatmap":
                t["format"] = "heatmap"
            if p["instant"]:
                t["instant"], t["range"], t["format"] = True, False, "table"
            targets.append(t)
        gp = {
            "id": i,
            "type": p["kind"],
            "title": p["title"],
            "description": p["description"],
            "datasource": DATASOURCE,
            "gridPos": {"x": x, "y": y, "w": w, "h": h},
            "fieldConfig": {"defaults": {"unit": p["unit"], "thresholds": p["thresholds"]}, "overrides": []},
            "options": {},
            "targets": targets,
        }
        if p["kind"] == "heatmap":
            gp["options"] = {"calculate": False, "yAxis": {"unit": p["unit"]}}
        out.append(gp)
        x, row_h = x + w, max(row_h, h)
    return out


def render(d):
    return {
        "uid": d["uid"],
        "title": d["title"],
        "description": d["description"],
        "tags": ["promgate", "victoriametrics"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {"list": d["variables"]},
        "annotations": {"list": []},
        "panels": layout(d["panels"]),
    }


def main():
    check = "--check" in sys.argv
    stale = []
    for d in DASHBOARDS:
        path = OUT / f"{d['uid']}.json"
        text = json.dumps(render(d), indent=2) + "\n"
        if check:
            if not path.exists() or path.read_text() != text:
                stale.append(str(path))
        else:
            path.write_text(text)
    if stale:
        sys.exit("stale dashboards (run python3 grafana/build_dashboards.py): " + ", ".join(stale))


if __name__ == "__main__":
    main()
