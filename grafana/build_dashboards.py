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

# Every agent's own figures come from its self-scrape (job "vmagent"); the
# fleet job only watches agents (up), and pinning the job keeps any other copy
# of an agent's metrics from counting it twice.
AGENT = 'job="vmagent"'
# Targets an agent scrapes for its cluster: not the fleet job, whose targets
# carry the watched agent's cluster but are scraped by the watcher.
SCRAPED = 'job!="vmagent-fleet"'
# How recent a self-scrape must be for an agent to count as alive.
FRESH = "1m"


def panel(kind, title, description, unit, targets, thr=OK, instant=False, merge=False):
    """targets: list of (expr, legendFormat). merge: join the targets' tables
    on their common labels into one table (Grafana's merge transformation)."""
    return {
        "kind": kind,
        "title": title,
        "description": description,
        "unit": unit,
        "thresholds": thr,
        "instant": instant,
        "targets": targets,
        "merge": merge,
    }


def variable(name, label, query, multi=False, default=None):
    """default: the value selected when the dashboard opens (else Grafana
    picks the first in sort order)."""
    current = {"selected": True, "text": default, "value": default} if default else {}
    return {
        "current": current,
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
            panel("stat", "Active vmagents", f"vmagents whose latest self-scrape within {FRESH} succeeded (six clusters and the receiver-scraper); a dead agent drops out after {FRESH}.", "none",
                  [(f'count(last_over_time(up{{job="vmagent"}}[{FRESH}]) == 1) or vector(0)', "agents")], thresholds((None, "red"), (6, "yellow"), (7, "green"))),
            panel("stat", "Targets down", "Scrape targets whose last scrape failed, across all clusters.", "none",
                  [("count(up == 0) or vector(0)", "down")], thresholds((None, "green"), (1, "red"))),
            panel("stat", "Clusters reporting", f"Clusters whose vmagent sent its own metrics within {FRESH}.", "none",
                  [(f'count(count by (cluster) (last_over_time(up{{job="vmagent"}}[{FRESH}]))) or vector(0)', "clusters")], thresholds((None, "red"), (6, "yellow"), (7, "green"))),
            panel("timeseries", "Ingestion rate by region", "Samples per second each region's agents push to VictoriaMetrics (each agent's own figures, counted once).", "short",
                  [(f"sum by (region) (rate(vmagent_remotewrite_rows_pushed_after_relabel_total{{{AGENT}}}[5m]))", "{{region}}")]),
            panel("timeseries", "Ingestion rate by environment", "Samples per second pushed per environment (each agent's own figures, counted once).", "short",
                  [(f"sum by (env) (rate(vmagent_remotewrite_rows_pushed_after_relabel_total{{{AGENT}}}[5m]))", "{{env}}")]),
            panel("table", "Cluster status", f"Targets each cluster's agent scrapes: up, and in all (scraped within {FRESH}).", "none",
                  [(f"sum by (env, region, cluster) (last_over_time(up{{{SCRAPED}}}[{FRESH}]))", "up"),
                   (f"count by (env, region, cluster) (last_over_time(up{{{SCRAPED}}}[{FRESH}]))", "targets")],
                  instant=True, merge=True),
            panel("timeseries", "Samples scraped per cluster", "Samples in the latest scrape of every target each cluster's agent scrapes, summed per cluster.", "short",
                  [(f"sum by (cluster) (scrape_samples_scraped{{{SCRAPED}}})", "{{cluster}}")]),
        ],
    },
    {
        "uid": "promgate-red",
        "title": "Application Performance (RED)",
        "description": "Rate, errors and duration of the services, per environment and cluster.",
        "variables": [
            variable("env", "Environment", "label_values(http_requests_total, env)", default="prod"),
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
                  [(f'histogram_quantile({q}, sum by (vmrange) (rate(vmagent_remotewrite_duration_seconds_bucket{{{AGENT}, cluster=~"$cluster"}}[5m])))', f"p{int(q * 100)}")
                   for q in (0.90, 0.95, 0.99)], LATENCY),
            panel("timeseries", "Remote-write pending bytes", "Bytes queued in each agent's persistent queue, not yet sent.", "bytes",
                  [(f'sum by (cluster) (vmagent_remotewrite_pending_data_bytes{{{AGENT}, cluster=~"$cluster"}})', "{{cluster}}")],
                  thresholds((None, "green"), (1e6, "yellow"), (1e8, "red"))),
            panel("timeseries", "Remote-write success rate", "Share of remote-write requests answered 2xx.", "percent",
                  [(f'100 * sum by (cluster) (rate(vmagent_remotewrite_requests_total{{{AGENT}, cluster=~"$cluster", status_code="2XX"}}[5m])) / sum by (cluster) (rate(vmagent_remotewrite_requests_total{{{AGENT}, cluster=~"$cluster"}}[5m]))', "{{cluster}}")],
                  PERCENT_OK),
            panel("timeseries", "Scrape duration by cluster", "Slowest scrape per cluster.", "s",
                  [(f'max by (cluster) (scrape_duration_seconds{{{SCRAPED}, cluster=~"$cluster"}})', "{{cluster}}")], LATENCY),
            panel("table", "VictoriaMetrics components", "Scrape health of vminsert, vmselect, vmstorage and vmalert.", "none",
                  [('up{job=~"vminsert|vmselect|vmstorage|vmalert"}', "{{job}} {{instance}}")],
                  thresholds((None, "red"), (1, "green")), instant=True),
            panel("timeseries", "Storage size", "Bytes on disk per vmstorage node.", "bytes",
                  [('sum by (instance) (vm_data_size_bytes{job="vmstorage"})', "{{instance}}")]),
            panel("timeseries", "Insert and select request duration", "p99 of vminsert's request time (its histogram) and of vmselect's per query path (its summary).", "s",
                  [('histogram_quantile(0.99, sum by (instance, vmrange) (rate(vminsert_request_duration_seconds_bucket{job="vminsert"}[5m])))', "insert {{instance}}"),
                   ('max by (instance, path) (vm_request_duration_seconds{job="vmselect", quantile="0.99"})', "select {{instance}} {{path}}")],
                  LATENCY),
            panel("timeseries", "Slow inserts", "Rows per second that missed the index cache (a sign of too little RAM for the series count).", "short",
                  [('sum by (instance) (rate(vm_slow_row_inserts_total{job="vmstorage"}[5m]))', "{{instance}}")],
                  thresholds((None, "green"), (10, "yellow"), (100, "red"))),
            panel("timeseries", "promgate live series", "Series each promgate replica holds from the legacy senders. A series sent to two replicas is held by both: the sum over replicas counts it twice.", "short",
                  [('sum by (instance) (promgate_live_series{job="promgate-self"})', "{{instance}}")]),
            panel("timeseries", "promgate rejected samples", "Samples per second each promgate replica refused, by reason (a sender writing to two replicas is refused by both).", "short",
                  [('sum by (instance, reason) (rate(promgate_samples_rejected_total{job="promgate-self"}[5m]))', "{{instance}} {{reason}}")],
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
                  [(f"histogram_quantile(0.95, sum by (region, vmrange) (rate(vmagent_remotewrite_duration_seconds_bucket{{{AGENT}}}[5m])))", "{{region}}")],
                  LATENCY),
            panel("stat", "Probe success rate by source", "Share of successful probes per source region.", "percent",
                  [('100 * avg by (source_region) (probe_success{job="blackbox"})', "{{source_region}}")], PERCENT_OK),
            # Grafana's heatmap format wants cumulative `le` buckets (it
            # subtracts neighbours); prometheus_buckets() turns
            # histogram_over_time()'s vmrange buckets into those.
            panel("heatmap", "Probe duration distribution", "How probe durations spread over the last 5 minutes.", "s",
                  [('prometheus_buckets(sum by (vmrange) (histogram_over_time(probe_duration_seconds{job="blackbox"}[5m])))', "{{le}}")]),
            panel("table", "Slowest paths", "The five slowest region pairs over the last 5 minutes.", "s",
                  [('topk(5, avg by (source_region, target_region) (avg_over_time(probe_duration_seconds{job="blackbox"}[5m])))', "{{source_region}} -> {{target_region}}")],
                  thresholds((None, "green"), (0.2, "yellow"), (0.5, "red")), instant=True),
        ],
    },
]


def rows(panels):
    """Groups panels into rows of at most 24 columns, in order."""
    out, width = [], 24
    for p in panels:
        w = SIZES[p["kind"]][0]
        if width + w > 24:
            out.append([])
            width = 0
        out[-1].append(p)
        width += w
    return out


def layout(panels):
    """Places panels in rows, each row stretched to the full 24 columns and to
    its tallest panel's height, so that the grid has no holes; returns Grafana
    panels."""
    out, y = [], 0
    for row in rows(panels):
        natural = [SIZES[p["kind"]][0] for p in row]
        h = max(SIZES[p["kind"]][1] for p in row)
        widths = [w * 24 // sum(natural) for w in natural]
        widths[-1] += 24 - sum(widths)
        x = 0
        for p, w in zip(row, widths):
            out.append(grafana_panel(len(out) + 1, p, {"x": x, "y": y, "w": w, "h": h}))
            x += w
        y += h
    return out


def grafana_panel(i, p, grid):
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
        "gridPos": grid,
        "fieldConfig": {"defaults": {"unit": p["unit"], "thresholds": p["thresholds"]}, "overrides": []},
        "options": {},
        "targets": targets,
    }
    if p["kind"] == "heatmap":
        gp["options"] = {"calculate": False, "yAxis": {"unit": p["unit"]}}
    if p["merge"]:
        gp["transformations"] = [{"id": "merge", "options": {}}]
    return gp


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
