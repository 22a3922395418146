// The audit report: JSON (docs/FORMAT.md, "Audit report") and a
// self-contained HTML page (inline CSS and SVG, no script, no network).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <sstream>

#include <nlohmann/json.hpp>

#include "vellum/audit/audit.h"

namespace vellum::audit {
namespace {

using nlohmann::json;

constexpr std::string_view kFormat = "vellum-audit-report/v1";

}  // namespace

std::string Finding::ToString() const {
  std::string out = subject;
  if (subject == "checkpoint" && position.has_value()) out += " size";
  if (position.has_value()) out += " " + std::to_string(*position);
  out += ": " + check;
  if (!expected.empty() || !computed.empty()) {
    out += " expected " + (expected.empty() ? std::string("-") : expected) + " computed " +
           (computed.empty() ? std::string("-") : computed);
  }
  if (!detail.empty()) out += " (" + detail + ")";
  return out;
}

const Finding* AuditReport::FirstBadBlock() const {
  const Finding* first = nullptr;
  for (const Finding& f : findings) {
    if (f.subject == "block" && f.position.has_value() && (first == nullptr || *f.position < *first->position)) first = &f;
  }
  return first;
}

namespace {

json FindingToJson(const Finding& f) {
  return json{{"subject", f.subject},
              {"position", f.position.has_value() ? json(*f.position) : json(nullptr)},
              {"check", f.check},
              {"expected", f.expected},
              {"computed", f.computed},
              {"detail", f.detail},
              {"text", f.ToString()}};
}

Finding FindingFromJson(const json& j) {
  Finding f;
  f.subject = j.at("subject").get<std::string>();
  if (!j.at("position").is_null()) f.position = j.at("position").get<std::uint64_t>();
  f.check = j.at("check").get<std::string>();
  f.expected = j.at("expected").get<std::string>();
  f.computed = j.at("computed").get<std::string>();
  f.detail = j.at("detail").get<std::string>();
  return f;
}

template <typename T>
json Optional(const std::optional<T>& v) {
  return v.has_value() ? json(*v) : json(nullptr);
}

template <typename T>
std::optional<T> OptionalFrom(const json& j) {
  if (j.is_null()) return std::nullopt;
  return j.get<T>();
}

}  // namespace

std::string FindingJson(const Finding& finding) { return FindingToJson(finding).dump(); }

Result<Finding> ParseFindingJson(std::string_view text) {
  try {
    return FindingFromJson(json::parse(text));
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("audit finding: ") + e.what());
  }
}

std::string ReportJson(const AuditReport& r) {
  const Counts& c = r.counts;
  json findings = json::array();
  for (const Finding& f : r.findings) findings.push_back(FindingToJson(f));
  json views = json::array();
  for (const ViewSize& v : r.views) views.push_back({{"model", v.model}, {"name", v.name}, {"part", v.part}, {"entries", v.entries}});
  json series = json::array();
  for (const SeriesPoint& p : r.series) {
    series.push_back({{"first_height", p.first_height},
                      {"last_height", p.last_height},
                      {"first_time_us", p.first_time_us},
                      {"last_time_us", p.last_time_us},
                      {"transactions", p.transactions},
                      {"max_block_transactions", p.max_block_transactions},
                      {"entries", p.entries}});
  }
  const Finding* first = r.FirstBadBlock();
  json j = {
      {"format", kFormat},
      {"clean", r.clean()},
      {"complete", r.complete},
      {"ledger",
       {{"name", r.ledger},
        {"id", r.ledger_id},
        {"data_dir", r.data_dir},
        {"blocks", r.blocks},
        {"transactions", r.transactions},
        {"first_time_us", r.first_time_us},
        {"last_time_us", r.last_time_us},
        {"log_root", r.log_root},
        {"state_root", r.state_root},
        {"latest_checkpoint", Optional(r.latest_checkpoint)}}},
      {"key", {{"vkey", r.vkey}, {"supplied", r.vkey_supplied}}},
      {"from_checkpoint", Optional(r.from_checkpoint)},
      {"counts",
       {{"blocks", c.blocks},
        {"transactions", c.transactions},
        {"tx_roots", c.tx_roots},
        {"log_nodes", c.log_nodes},
        {"checkpoints", c.checkpoints},
        {"state_roots", c.state_roots},
        {"blocks_trusted", c.blocks_trusted},
        {"records", c.records},
        {"pages", c.pages},
        {"values", c.values}}},
      {"findings_total", r.findings_total},
      {"first_bad_block", first != nullptr ? FindingToJson(*first) : json(nullptr)},
      {"findings", findings},
      {"notes", r.notes},
      {"views", views},
      {"series", series},
      {"seconds", r.seconds},
  };
  return j.dump(2) + "\n";
}

Result<AuditReport> ParseReportJson(std::string_view text) {
  try {
    const json j = json::parse(text);
    if (j.at("format").get<std::string>() != kFormat) return InvalidArgument("audit report: unknown format");
    AuditReport r;
    r.complete = j.at("complete").get<bool>();
    const json& l = j.at("ledger");
    r.ledger = l.at("name").get<std::string>();
    r.ledger_id = l.at("id").get<std::string>();
    r.data_dir = l.at("data_dir").get<std::string>();
    r.blocks = l.at("blocks").get<std::uint64_t>();
    r.transactions = l.at("transactions").get<std::uint64_t>();
    r.first_time_us = l.at("first_time_us").get<std::int64_t>();
    r.last_time_us = l.at("last_time_us").get<std::int64_t>();
    r.log_root = l.at("log_root").get<std::string>();
    r.state_root = l.at("state_root").get<std::string>();
    r.latest_checkpoint = OptionalFrom<std::uint64_t>(l.at("latest_checkpoint"));
    r.vkey = j.at("key").at("vkey").get<std::string>();
    r.vkey_supplied = j.at("key").at("supplied").get<bool>();
    r.from_checkpoint = OptionalFrom<std::uint64_t>(j.at("from_checkpoint"));
    const json& c = j.at("counts");
    r.counts = {c.at("blocks").get<std::uint64_t>(),     c.at("transactions").get<std::uint64_t>(),
                c.at("tx_roots").get<std::uint64_t>(),   c.at("log_nodes").get<std::uint64_t>(),
                c.at("checkpoints").get<std::uint64_t>(), c.at("state_roots").get<std::uint64_t>(),
                c.at("blocks_trusted").get<std::uint64_t>(), c.at("records").get<std::uint64_t>(),
                c.at("pages").get<std::uint64_t>(),      c.at("values").get<std::uint64_t>()};
    r.findings_total = j.at("findings_total").get<std::uint64_t>();
    for (const json& f : j.at("findings")) r.findings.push_back(FindingFromJson(f));
    r.notes = j.at("notes").get<std::vector<std::string>>();
    for (const json& v : j.at("views")) {
      r.views.push_back({v.at("model").get<std::string>(), v.at("name").get<std::string>(), v.at("part").get<std::string>(),
                         v.at("entries").get<std::uint64_t>()});
    }
    for (const json& p : j.at("series")) {
      r.series.push_back({p.at("first_height").get<std::uint64_t>(), p.at("last_height").get<std::uint64_t>(),
                          p.at("first_time_us").get<std::int64_t>(), p.at("last_time_us").get<std::int64_t>(),
                          p.at("transactions").get<std::uint64_t>(), p.at("max_block_transactions").get<std::uint32_t>(),
                          p.at("entries").get<std::uint64_t>()});
    }
    r.seconds = j.at("seconds").get<double>();
    return r;
  } catch (const json::exception& e) {
    return InvalidArgument(std::string("audit report: ") + e.what());
  }
}

// ---- HTML -------------------------------------------------------------------

namespace {

std::string Esc(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    switch (ch) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += ch;
    }
  }
  return out;
}

std::string Time(std::int64_t us) {
  if (us <= 0) return "-";
  const std::time_t t = static_cast<std::time_t>(us / 1000000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

std::string Num(double v) {
  char buf[64];
  if (std::fabs(v) >= 1e6) std::snprintf(buf, sizeof buf, "%.2fM", v / 1e6);
  else if (std::fabs(v) >= 1e4) std::snprintf(buf, sizeof buf, "%.1fk", v / 1e3);
  else if (v == std::floor(v)) std::snprintf(buf, sizeof buf, "%.0f", v);
  else std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Fmt(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f", v);
  return buf;
}

std::string Grouped(std::uint64_t v) {
  std::string s = std::to_string(v), out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// A line chart of (x, y) points with labelled axes, as inline SVG.
std::string LineChart(const std::vector<std::pair<double, double>>& pts, const std::string& title,
                      const std::string& x_first, const std::string& x_mid, const std::string& x_last,
                      const std::string& y_label) {
  constexpr double kW = 1000, kH = 260, kL = 70, kR = 20, kT = 20, kB = 40;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << kW << " " << kH << "\" role=\"img\" aria-label=\""
    << Esc(title) << "\">";
  s << "<rect x=\"0\" y=\"0\" width=\"" << kW << "\" height=\"" << kH << "\" fill=\"#fff\"/>";
  if (pts.empty()) {
    s << "<text x=\"" << kW / 2 << "\" y=\"" << kH / 2 << "\" text-anchor=\"middle\" fill=\"#666\">no blocks</text></svg>";
    return s.str();
  }
  double x0 = pts.front().first, x1 = pts.back().first, ymax = 0;
  for (const auto& [x, y] : pts) ymax = std::max(ymax, y);
  if (x1 <= x0) x1 = x0 + 1;
  if (ymax <= 0) ymax = 1;
  auto X = [&](double x) { return kL + (x - x0) / (x1 - x0) * (kW - kL - kR); };
  auto Y = [&](double y) { return kH - kB - y / ymax * (kH - kT - kB); };
  for (int i = 0; i <= 4; ++i) {
    const double y = ymax * i / 4;
    s << "<line x1=\"" << kL << "\" x2=\"" << kW - kR << "\" y1=\"" << Fmt(Y(y)) << "\" y2=\"" << Fmt(Y(y))
      << "\" stroke=\"#e3e3e3\"/><text x=\"" << kL - 6 << "\" y=\"" << Fmt(Y(y) + 4)
      << "\" text-anchor=\"end\" font-size=\"12\" fill=\"#555\">" << Num(y) << "</text>";
  }
  std::ostringstream line;
  line << Fmt(X(pts.front().first)) << "," << Fmt(Y(0));
  for (const auto& [x, y] : pts) line << " " << Fmt(X(x)) << "," << Fmt(Y(y));
  line << " " << Fmt(X(pts.back().first)) << "," << Fmt(Y(0));
  s << "<polygon points=\"" << line.str() << "\" fill=\"#9ec5e8\" stroke=\"#2f6fa8\" stroke-width=\"1.5\"/>";
  s << "<line x1=\"" << kL << "\" x2=\"" << kW - kR << "\" y1=\"" << kH - kB << "\" y2=\"" << kH - kB << "\" stroke=\"#333\"/>";
  s << "<text x=\"" << kL << "\" y=\"" << kH - kB + 18 << "\" font-size=\"12\" fill=\"#333\">" << Esc(x_first) << "</text>";
  s << "<text x=\"" << kW - kR << "\" y=\"" << kH - kB + 18 << "\" text-anchor=\"end\" font-size=\"12\" fill=\"#333\">"
    << Esc(x_last) << "</text>";
  if (!x_mid.empty()) {
    s << "<text x=\"" << (kL + kW - kR) / 2 << "\" y=\"" << kH - kB + 18
      << "\" text-anchor=\"middle\" font-size=\"12\" fill=\"#333\">" << Esc(x_mid) << "</text>";
  }
  s << "<text x=\"14\" y=\"" << kT + (kH - kT - kB) / 2 << "\" font-size=\"12\" fill=\"#333\" transform=\"rotate(-90 14 "
    << kT + (kH - kT - kB) / 2 << ")\" text-anchor=\"middle\">" << Esc(y_label) << "</text>";
  s << "</svg>";
  return s.str();
}

// Horizontal bars, one per label.
std::string BarChart(const std::vector<std::pair<std::string, std::uint64_t>>& bars, const std::string& title) {
  constexpr double kW = 1000, kRow = 22, kLabel = 300, kR = 90;
  const double h = std::max<double>(1, static_cast<double>(bars.size())) * kRow + 10;
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 " << kW << " " << h << "\" role=\"img\" aria-label=\""
    << Esc(title) << "\">";
  if (bars.empty()) {
    s << "<text x=\"10\" y=\"20\" fill=\"#666\">no views</text></svg>";
    return s.str();
  }
  std::uint64_t max = 1;
  for (const auto& b : bars) max = std::max(max, b.second);
  double y = 5;
  for (const auto& [label, v] : bars) {
    const double w = (kW - kLabel - kR) * static_cast<double>(v) / static_cast<double>(max);
    s << "<text x=\"" << kLabel - 8 << "\" y=\"" << Fmt(y + 15) << "\" text-anchor=\"end\" font-size=\"13\" fill=\"#222\">"
      << Esc(label.size() > 40 ? label.substr(0, 37) + "..." : label) << "</text>";
    s << "<rect x=\"" << kLabel << "\" y=\"" << Fmt(y + 3) << "\" width=\"" << Fmt(std::max(w, 1.0))
      << "\" height=\"" << kRow - 6 << "\" fill=\"#5b9a68\"/>";
    s << "<text x=\"" << Fmt(kLabel + std::max(w, 1.0) + 6) << "\" y=\"" << Fmt(y + 15) << "\" font-size=\"13\" fill=\"#222\">"
      << Grouped(v) << "</text>";
    y += kRow;
  }
  s << "</svg>";
  return s.str();
}

void Row(std::ostringstream& s, const std::string& k, const std::string& v, bool code = false) {
  s << "<tr><th>" << Esc(k) << "</th><td>" << (code ? "<code>" : "") << Esc(v) << (code ? "</code>" : "") << "</td></tr>\n";
}

}  // namespace

std::string ReportHtml(const AuditReport& r) {
  std::ostringstream s;
  const std::string name = r.ledger.empty() ? std::string("(unnamed ledger)") : r.ledger;
  s << "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
    << "<title>Vellum audit: " << Esc(name) << "</title>\n"
    << "<style>\n"
       "body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:24px auto;max-width:1100px;"
       "color:#1b1b1b;padding:0 16px}\n"
       "h1{font-size:26px;margin-bottom:4px}h2{font-size:19px;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:4px}\n"
       "table{border-collapse:collapse;width:100%;font-size:14px}th,td{text-align:left;padding:4px 8px;"
       "border-bottom:1px solid #eee;vertical-align:top}th{width:230px;color:#444;font-weight:600}\n"
       "code{font-family:'DejaVu Sans Mono',monospace;font-size:12.5px;word-break:break-all}\n"
       ".verdict{padding:12px 16px;border-radius:6px;font-size:18px;font-weight:600;margin:14px 0}\n"
       ".clean{background:#e3f4e6;color:#17602a;border:1px solid #9fd3aa}.bad{background:#fde7e7;color:#8a1414;"
       "border:1px solid #f0a3a3}.partial{background:#fff4d6;color:#7a5600;border:1px solid #f0d58a}\n"
       ".findings td{font-family:'DejaVu Sans Mono',monospace;font-size:12.5px;word-break:break-all}\n"
       ".muted{color:#666;font-size:13px}svg{width:100%;height:auto;border:1px solid #eee}\n"
       "</style></head><body>\n";
  s << "<h1>Vellum audit report</h1>\n<div class=\"muted\">ledger <b>" << Esc(name) << "</b> in <code>" << Esc(r.data_dir)
    << "</code></div>\n";
  if (r.clean() && r.complete) {
    s << "<div class=\"verdict clean\" id=\"verdict\">CLEAN: every check passed (" << Grouped(r.counts.blocks)
      << " blocks, " << Grouped(r.counts.transactions) << " transactions)</div>\n";
  } else if (r.clean()) {
    s << "<div class=\"verdict partial\" id=\"verdict\">INCOMPLETE: no finding, but not everything could be checked (see notes)</div>\n";
  } else {
    s << "<div class=\"verdict bad\" id=\"verdict\">" << Grouped(r.findings_total) << " FINDING"
      << (r.findings_total == 1 ? "" : "S") << ": the store does not match what was committed</div>\n";
  }

  s << "<h2>Ledger summary</h2>\n<table id=\"summary\">\n";
  Row(s, "Ledger", name);
  Row(s, "Ledger id", r.ledger_id, true);
  Row(s, "Blocks", Grouped(r.blocks));
  Row(s, "Transactions", Grouped(r.transactions));
  Row(s, "First block", Time(r.first_time_us));
  Row(s, "Last block", Time(r.last_time_us));
  Row(s, "Log root (recomputed)", r.log_root.empty() ? "-" : r.log_root, true);
  Row(s, "State root (recomputed)", r.state_root.empty() ? "-" : r.state_root, true);
  Row(s, "Newest signed checkpoint", r.latest_checkpoint.has_value() ? "size " + Grouped(*r.latest_checkpoint) : "none");
  Row(s, "Verifier key", r.vkey.empty() ? "-" : r.vkey, true);
  Row(s, "Key source", r.vkey_supplied ? "supplied independently (--vkey)"
                                       : "NOT supplied independently: the ledger's own stored key was used");
  Row(s, "Mode", r.from_checkpoint.has_value()
                     ? "incremental, from the checkpoint of size " + Grouped(*r.from_checkpoint)
                     : "full replay from genesis");
  char secs[32];
  std::snprintf(secs, sizeof secs, r.seconds < 10 ? "%.2f" : "%.0f", r.seconds);
  Row(s, "Audit time", std::string(secs) + " s" +
                           (r.seconds > 0 ? " (" + Grouped(static_cast<std::uint64_t>(
                                                       static_cast<double>(r.counts.transactions) / r.seconds)) +
                                                " transactions/s)"
                                          : ""));
  s << "</table>\n";

  const Counts& c = r.counts;
  s << "<h2>What was checked</h2>\n<table id=\"checks\">\n";
  Row(s, "Block headers", Grouped(c.blocks) + " decoded; hash-chain link, height, ledger id, timestamps checked");
  Row(s, "Transactions", Grouped(c.transactions) + " decoded and hashed");
  Row(s, "Transaction roots", Grouped(c.tx_roots) + " recomputed (RFC 9162)");
  Row(s, "Log tree nodes", Grouped(c.log_nodes) + " stored nodes compared with the recomputed tree");
  Row(s, "Signed checkpoints", Grouped(c.checkpoints) + " signatures and roots verified");
  Row(s, "State roots", Grouped(c.state_roots) + " recomputed by replaying every view");
  if (c.blocks_trusted > 0) Row(s, "Blocks before the given checkpoint", Grouped(c.blocks_trusted) + " trusted from an earlier audit");
  Row(s, "Views store", Grouped(c.records) + " state records, " + Grouped(c.pages) + " map pages, " + Grouped(c.values) +
                            " values compared with the rebuild (values re-hashed)");
  s << "</table>\n";

  s << "<h2>First bad block</h2>\n";
  if (const Finding* f = r.FirstBadBlock(); f != nullptr) {
    s << "<table id=\"first-bad\">\n";
    Row(s, "Block", Grouped(*f->position));
    Row(s, "Failed check", f->check, true);
    if (!f->expected.empty()) Row(s, "Committed", f->expected, true);
    if (!f->computed.empty()) Row(s, "Recomputed", f->computed, true);
    if (!f->detail.empty()) Row(s, "Detail", f->detail);
    s << "</table>\n";
  } else {
    s << "<p id=\"first-bad\">None: no block failed a check.</p>\n";
  }

  s << "<h2>Findings (" << Grouped(r.findings_total) << ")</h2>\n";
  if (r.findings.empty()) {
    s << "<p>None.</p>\n";
  } else {
    s << "<table class=\"findings\">\n";
    for (const Finding& f : r.findings) s << "<tr><td>" << Esc(f.ToString()) << "</td></tr>\n";
    s << "</table>\n";
    if (r.findings_total > r.findings.size()) {
      s << "<p class=\"muted\">Only the first " << r.findings.size() << " findings are listed.</p>\n";
    }
  }

  // Charts: blocks along the x axis (evenly, so bursts stay readable), with
  // the commit time of the first, middle and last block under it.
  std::vector<std::pair<double, double>> tx_pts, entry_pts;
  for (const SeriesPoint& p : r.series) {
    const double blocks = static_cast<double>(p.last_height - p.first_height + 1);
    const double x = static_cast<double>(p.first_height + p.last_height) / 2;
    tx_pts.emplace_back(x, static_cast<double>(p.transactions) / blocks);
    entry_pts.emplace_back(x, static_cast<double>(p.entries));
  }
  std::string x_first = "-", x_mid, x_last = "-";
  if (!r.series.empty()) {
    const SeriesPoint& a = r.series.front();
    const SeriesPoint& m = r.series[r.series.size() / 2];
    const SeriesPoint& b = r.series.back();
    x_first = "block " + std::to_string(a.first_height) + " · " + Time(a.first_time_us);
    if (r.series.size() > 2) x_mid = "block " + std::to_string(m.first_height) + " · " + Time(m.first_time_us);
    x_last = "block " + std::to_string(b.last_height) + " · " + Time(b.last_time_us);
  }
  s << "<h2>Transactions per block over time</h2>\n"
    << LineChart(tx_pts, "Transactions per block over time", x_first, x_mid, x_last, "transactions per block") << "\n";
  s << "<p class=\"muted\">Transactions per block, averaged over runs of consecutive blocks (at most " << kMaxSeriesPoints
    << " points); commit times under the axis.</p>\n";
  s << "<h2>View sizes</h2>\n";
  std::vector<std::pair<std::string, std::uint64_t>> bars;
  for (const ViewSize& v : r.views) bars.emplace_back(v.model + "/" + v.name + (v.part.empty() ? "" : "/" + v.part), v.entries);
  std::stable_sort(bars.begin(), bars.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  const size_t shown = std::min<size_t>(bars.size(), 40);
  const bool more = bars.size() > shown;
  bars.resize(shown);
  s << BarChart(bars, "Entries per view after the last block") << "\n";
  s << "<p class=\"muted\">Entries per map after the last block" << (more ? " (the 40 largest)" : "") << ".</p>\n";
  s << LineChart(entry_pts, "Entries in all views over time", x_first, x_mid, x_last, "entries, all views") << "\n";

  s << "<h2>Notes</h2>\n";
  if (r.notes.empty()) s << "<p>None.</p>\n";
  else {
    s << "<ul>\n";
    for (const std::string& n : r.notes) s << "<li>" << Esc(n) << "</li>\n";
    s << "</ul>\n";
  }
  s << "<p class=\"muted\">Generated by vellum-audit. Machine-readable findings: the .json file beside this one "
       "(docs/FORMAT.md, \"Audit report\").</p>\n";
  s << "</body></html>\n";
  return s.str();
}

}  // namespace vellum::audit
