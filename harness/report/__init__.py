"""Reports: results recorded as the run goes (controller only), results.json,
junit.xml, report.html, merged shards, failure bundles and metric snapshots."""
