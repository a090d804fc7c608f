// benchmarks/report.cpp — the table of a benchmark run: ipc's figures beside the alternatives measured
// in the same run, how many times faster ipc is than each, and whether the targets are met.
//
//   bench_report [--no-python] [--chart-data FILE] RESULT.json...
//
// Reads Google Benchmark's JSON (and python_peers.py's, which has the same shape), prints Markdown
// tables, and with --chart-data writes the throughput by size for benchmarks/chart.gp.
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace {

using nlohmann::json;

constexpr double nan = std::numeric_limits<double>::quiet_NaN();

/// One case's result; NaN where the case does not report that figure.
struct Figure {
    double per_second = nan;        // messages, updates, tasks or starts per second
    double bytes_per_second = nan;
    double seconds_per_iteration = nan;
    double median_us = nan;
    double p99_us = nan;
    double buffer_bytes = nan;  // the kernel buffer a peer's channel got, and the errno of a refusal
    double buffer_errno = nan;
    std::string error;
};

/// The prefix of a case measured while both CPUs were kept busy by unrelated processes
/// (./run.sh bench runs such passes with --benchmark_context=load=busy).
const std::string busy_prefix = "busy:";

double number(const json& entry, const char* key) {
    const auto found = entry.find(key);
    return found != entry.end() && found->is_number() ? found->get<double>() : nan;
}

double seconds_per_unit(const std::string& unit) {
    if (unit == "ns") return 1e-9;
    if (unit == "us") return 1e-6;
    if (unit == "ms") return 1e-3;
    return 1.0;
}

/// "ipc.Pipe.send_bytes/64/real_time" → "ipc.Pipe.send_bytes/64": the options Google Benchmark appends.
std::string base_name(std::string name) {
    static const std::vector<std::string> options{"/real_time", "/manual_time", "/process_time", "/min_time:",
                                                  "/iterations:", "/repeats:", "/threads:"};
    for (bool stripped = true; stripped;) {
        stripped = false;
        for (const auto& option : options) {
            const auto at = name.rfind(option);
            if (at != std::string::npos && name.find('/', at + 1) == std::string::npos) {
                name.erase(at);
                stripped = true;
            }
        }
    }
    return name;
}

double median(std::vector<double> values) {
    std::erase_if(values, [](double v) { return std::isnan(v); });
    if (values.empty()) return nan;
    std::sort(values.begin(), values.end());
    const auto middle = values.size() / 2;
    return values.size() % 2 ? values[middle] : (values[middle - 1] + values[middle]) / 2;
}

/// Every case of every file, by base name. With repetitions, Google Benchmark's median aggregate
/// wins; otherwise the median of the runs found.
class Results {
public:
    void load(const std::string& path) {
        std::ifstream in(path);
        if (!in) throw std::runtime_error("cannot open " + path);
        const auto document = json::parse(in);
        const auto context = document.value("context", json::object());
        const bool busy = context.value("load", std::string()) == "busy";
        if (first_context_.empty() && !busy) first_context_ = context;
        for (const auto& entry : document.value("benchmarks", json::array())) {
            const auto name =
                (busy ? busy_prefix : "") + base_name(entry.value("run_name", entry.value("name", std::string())));
            Figure figure;
            if (entry.value("error_occurred", false)) {
                figure.error = entry.value("error_message", std::string("failed"));
            } else {
                figure.per_second = number(entry, "items_per_second");
                figure.bytes_per_second = number(entry, "bytes_per_second");
                figure.seconds_per_iteration =
                    number(entry, "real_time") * seconds_per_unit(entry.value("time_unit", std::string("ns")));
                figure.median_us = number(entry, "median_us");
                figure.p99_us = number(entry, "p99_us");
                figure.buffer_bytes = number(entry, "buffer_bytes");
                figure.buffer_errno = number(entry, "buffer_errno");
            }
            if (entry.value("run_type", std::string()) == "aggregate") {
                if (entry.value("aggregate_name", std::string()) == "median") medians_[name] = figure;
            } else {
                runs_[name].push_back(figure);
            }
        }
    }

    [[nodiscard]] std::optional<Figure> find(const std::string& name) const {
        if (const auto found = medians_.find(name); found != medians_.end()) return found->second;
        const auto found = runs_.find(name);
        if (found == runs_.end()) return std::nullopt;
        const auto& runs = found->second;
        // A case that failed in any pass is shown failed: the median of the others would hide it.
        for (const auto& run : runs)
            if (!run.error.empty()) return run;
        if (runs.size() == 1) return runs.front();
        auto of = [&](double Figure::*field) {
            std::vector<double> values;
            for (const auto& run : runs) values.push_back(run.*field);
            return median(values);
        };
        Figure figure{of(&Figure::per_second), of(&Figure::bytes_per_second), of(&Figure::seconds_per_iteration),
                      of(&Figure::median_us),  of(&Figure::p99_us),           runs.front().buffer_bytes,
                      runs.front().buffer_errno, {}};
        return figure;
    }

    /// The cases that failed in some pass, by name.
    [[nodiscard]] std::vector<std::string> failed() const {
        std::vector<std::string> names;
        for (const auto& [name, runs] : runs_)
            if (std::any_of(runs.begin(), runs.end(), [](const Figure& run) { return !run.error.empty(); }))
                names.push_back(name);
        for (const auto& [name, figure] : medians_)
            if (!figure.error.empty() && !runs_.contains(name)) names.push_back(name);
        return names;
    }

    [[nodiscard]] const json& context() const { return first_context_; }

private:
    std::map<std::string, std::vector<Figure>> runs_;
    std::map<std::string, Figure> medians_;
    json first_context_ = json::object();
};

// --- numbers as people read them ---

std::string printf_string(const char* format, double value) {
    char text[64];
    std::snprintf(text, sizeof text, format, value);
    return text;
}

/// Three significant digits.
std::string digits(double value) {
    if (value >= 100) return printf_string("%.0f", value);
    if (value >= 10) return printf_string("%.1f", value);
    return printf_string("%.2f", value);
}

std::string with_prefix(double value, const std::string& unit) {
    if (value >= 1e9) return digits(value / 1e9) + " G" + unit;
    if (value >= 1e6) return digits(value / 1e6) + " M" + unit;
    if (value >= 1e3) return digits(value / 1e3) + " k" + unit;
    return digits(value) + " " + unit;
}

std::string rate(double per_second) { return with_prefix(per_second, "/s"); }
std::string byte_rate(double per_second) { return with_prefix(per_second, "B/s"); }

std::string duration(double seconds) {
    if (seconds >= 1) return digits(seconds) + " s";
    if (seconds >= 1e-3) return digits(seconds * 1e3) + " ms";
    return digits(seconds * 1e6) + " µs";
}

std::string times(double ratio) {
    if (ratio >= 10) return printf_string("%.0f×", ratio);
    if (ratio >= 1) return printf_string("%.1f×", ratio);
    return printf_string("%.2f×", ratio);
}

/// 1048576 → "1 MiB", 65536 → "64 KiB".
std::string binary_size(double bytes) {
    auto in = [](double units) { return units == std::floor(units) ? printf_string("%.0f", units) : digits(units); };
    if (bytes >= 1 << 20) return in(bytes / (1 << 20)) + " MiB";
    if (bytes >= 1 << 10) return in(bytes / (1 << 10)) + " KiB";
    return in(bytes) + " B";
}

std::string size_label(const std::string& size) {
    if (size.ends_with("Mi")) return size.substr(0, size.size() - 2) + " MiB";
    if (size.ends_with("Ki")) return size.substr(0, size.size() - 2) + " KiB";
    return size + " B";
}

// --- Markdown tables, padded so that they read as well in a terminal ---

std::size_t display_width(const std::string& text) {
    // UTF-8: count the bytes that start a character (×, ≥, µ take one column each).
    return static_cast<std::size_t>(std::count_if(text.begin(), text.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

class Table {
public:
    explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}
    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

    void print(std::ostream& out) const {
        std::vector<std::size_t> widths(rows_.front().size(), 3);
        for (const auto& row : rows_)
            for (std::size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
        auto cell = [&](const std::string& text, std::size_t column) {
            const std::string pad(widths[column] - display_width(text), ' ');
            return column == 0 ? text + pad : pad + text;  // names left, figures right
        };
        for (std::size_t r = 0; r < rows_.size(); ++r) {
            out << '|';
            for (std::size_t i = 0; i < rows_[r].size(); ++i) out << ' ' << cell(rows_[r][i], i) << " |";
            out << '\n';
            if (r == 0) {
                out << '|';
                for (std::size_t i = 0; i < widths.size(); ++i)
                    out << (i == 0 ? ":" + std::string(widths[i] + 1, '-') : std::string(widths[i] + 1, '-') + ":") << '|';
                out << '\n';
            }
        }
        out << '\n';
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

// --- the report ---

enum class Outcome { met, missed, unknown };

struct Target {
    std::string what;
    std::string measured;
    Outcome outcome;
};

class Report {
public:
    Report(const Results& results, bool python_found) : results_(results), python_found_(python_found) {}

    void print(std::ostream& out) {
        print_context(out);
        messages(out);
        alternatives(out);
        buffers(out);
        round_trips(out);
        round_trips_under_load(out);
        shared_state(out);
        managers(out);
        busy_machine(out);
        pool(out);
        mpi_pool(out);
        process_start(out);
        targets(out);
    }

    void write_chart_data(std::ostream& out) const {
        const std::vector<std::pair<std::string, std::string>> series{
            {"ipc.Pipe.send_bytes", "ipc Pipe"},   {"ipc.Queue", "ipc Queue"},
            {"ipc.SharedMemory.handoff", "ipc SharedMemory hand-off"},
            {"kernel.pipe", "kernel pipe"},        {"kernel.socketpair", "socketpair"},
            {"boost.message_queue", "Boost message_queue"},
            {"python.Pipe.send_bytes", "Python Pipe"}, {"python.Queue", "Python Queue"},
            {"memcpy", "memcpy (one process)"}};
        out << "size label";
        for (const auto& [name, title] : series) out << " \"" << title << '"';
        out << '\n';
        for (const auto& [size, bytes] : sizes) {
            out << bytes << " \"" << size_label(size) << '"';
            for (const auto& [name, title] : series) {
                const auto figure = results_.find(name + "/" + size);
                const bool usable = figure && figure->error.empty() && !std::isnan(figure->bytes_per_second);
                out << ' ' << (usable ? printf_string("%.6g", figure->bytes_per_second) : "?");
            }
            out << '\n';
        }
    }

private:
    static inline const std::vector<std::pair<std::string, long>> sizes{
        {"8", 8}, {"64", 64}, {"1Ki", 1024}, {"64Ki", 65536}, {"1Mi", 1048576}};
    /// ipc's message cases (the name after "ipc.", the label of its row).
    static inline const std::vector<std::pair<std::string, std::string>> message_channels{
        {"Pipe.send_bytes", "Pipe send_bytes/recv_bytes_into"},
        {"Pipe.send", "Pipe send/recv of a vector<byte>"},
        {"Pipe.loan", "Pipe loan/recv_view (zero copy)"},
        {"Queue", "Queue put/get of a vector<byte>"},
        {"Pipe.send.array", "Pipe send/recv of an array<byte, N>"},
        {"Queue.array", "Queue put/get of an array<byte, N>"},
        {"Queue.2to1", "Queue, 2 senders → 1 receiver"},
        {"Queue.1to2", "Queue, 1 sender → 2 receivers"},
        {"Queue.4to4", "Queue, 4 senders → 4 receivers"},
        {"SimpleQueue", "SimpleQueue"},
        {"SharedMemory.handoff", "SharedMemory hand-off (Semaphore)"}};

    /// The figure of `name`, or why there is none, as a table cell.
    [[nodiscard]] std::optional<Figure> get(const std::string& name, std::string& why) const {
        const auto figure = results_.find(name);
        if (!figure) {
            why = name.starts_with("python.") && !python_found_ ? "python3 not found" : "not measured";
            return std::nullopt;
        }
        if (!figure->error.empty()) {
            why = "error: " + figure->error;
            return std::nullopt;
        }
        return figure;
    }

    /// How many times more per second `ipc` does than `peer` (messages, updates, tasks).
    std::string ratio_cell(const std::optional<Figure>& ipc, const std::string& peer) const {
        std::string why;
        const auto other = get(peer, why);
        if (!other) return why;
        if (!ipc) return "";
        return times(ipc->per_second / other->per_second);
    }

    /// A target "ipc ≥ factor × peer", per second.
    void faster_than(const std::string& what, const std::optional<Figure>& ipc, std::optional<Figure> peer,
                     const std::string& why_no_peer, double factor) {
        if (!ipc) return targets_.push_back({what, "ipc not measured", Outcome::unknown});
        if (!peer) return targets_.push_back({what, why_no_peer, Outcome::unknown});
        const double ratio = ipc->per_second / peer->per_second;
        // Three digits, so that a ratio just under its target never reads as the target itself.
        targets_.push_back({what, printf_string("%.3g×", ratio), ratio >= factor ? Outcome::met : Outcome::missed});
    }

    /// "met" when every target of a row checked so far (from `first`) is met, "MISSED" when any is not.
    std::string outcome_since(std::size_t first) const {
        bool any_met = false;
        for (auto t = targets_.begin() + static_cast<std::ptrdiff_t>(first); t != targets_.end(); ++t) {
            if (t->outcome == Outcome::missed) return "MISSED";
            any_met = any_met || t->outcome == Outcome::met;
        }
        return any_met ? "met" : (first == targets_.size() ? "" : "not measured");
    }

    void print_context(std::ostream& out) const {
        const auto& context = results_.context();
        out << "Measured " << context.value("date", std::string("at an unknown date"));
        if (context.contains("load_avg") && context["load_avg"].is_array() && !context["load_avg"].empty()) {
            out << ", load average";
            for (const auto& load : context["load_avg"]) out << ' ' << printf_string("%.2f", load.get<double>());
        }
        out << ".\n\nRatios say how many times faster ipc is than the alternative (higher is better). Every figure\n"
               "crosses a process boundary except memcpy's.\n\n";
    }

    void messages(std::ostream& out) {
        out << "### Messages between processes (one sender, one receiver unless noted)\n\n";
        const auto& channels = message_channels;
        Table table({"case", "size", "ipc", "× kernel pipe", "× socketpair", "× Boost mq", "× Python (same case)",
                     "of memcpy", "target"});
        for (const auto& [size, bytes] : sizes) {
            for (const auto& [channel, label] : channels) {
                const auto name = "ipc." + channel + "/" + size;
                if (is_array_case(channel) && !results_.find(name)) continue;  // arrays stop at 1 KiB
                std::string why;
                const auto ipc = get(name, why);
                const auto first_target = targets_.size();
                check_message_targets(channel, label, size, ipc);
                std::string memcpy_share;
                if (std::string why_memcpy; ipc) {
                    const auto copy = get("memcpy/" + size, why_memcpy);
                    memcpy_share = copy ? printf_string("%.0f %%", 100 * ipc->bytes_per_second / copy->bytes_per_second)
                                        : why_memcpy;
                }
                table.add({label, size_label(size),
                           ipc ? rate(ipc->per_second) + " · " + byte_rate(ipc->bytes_per_second) : why,
                           ratio_cell(ipc, "kernel.pipe/" + size), ratio_cell(ipc, "kernel.socketpair/" + size),
                           ratio_cell(ipc, boost_case(channel) + "/" + size), ratio_cell(ipc, "python." + python_case(channel) + "/" + size),
                           memcpy_share, outcome_since(first_target)});
            }
        }
        table.print(out);
        out << "2 → 1 and 1 → 2 are compared with the 1 → 1 alternatives, except Python's, which runs the same shape; "
               "4 → 4 with Boost's message_queue in the same shape.\n"
               "The hand-off moves the bytes through slots of one SharedMemory block instead of a channel.\n\n";
    }

    /// A value of exactly N bytes, copied in and out: nothing allocated per message.
    static bool is_array_case(const std::string& channel) { return channel.ends_with(".array"); }
    /// Boost's case for ipc's: the same shape where Boost runs it, else one sender and one receiver.
    static std::string boost_case(const std::string& channel) {
        return channel == "Queue.4to4" ? "boost.message_queue.4to4" : "boost.message_queue";
    }
    /// Python's case for ipc's: bytes objects stand for both vectors and arrays.
    static std::string python_case(const std::string& channel) {
        if (channel == "Pipe.loan") return "Pipe.send_bytes";  // Python has no loans: its nearest calls
        return is_array_case(channel) ? channel.substr(0, channel.size() - std::string(".array").size()) : channel;
    }

    void check_message_targets(const std::string& channel, const std::string& label, const std::string& size,
                               const std::optional<Figure>& ipc) {
        if (channel == "Pipe.loan") return check_loan_targets(size, ipc);
        if (channel != "Pipe.send_bytes" && channel != "Pipe.send" && channel != "Queue" && !is_array_case(channel))
            return;
        std::string why;
        if (size == "64") {
            faster_than("64 B " + label + " ≥ 10× a kernel pipe's messages/s", ipc, get("kernel.pipe/64", why), why, 10);
            // Like for like: a Pipe against Python's Pipe (the same calls), a Queue against its Queue.
            const bool pipe = channel.starts_with("Pipe.");
            const auto python = "python." + python_case(channel) + "/64";
            faster_than("64 B " + label + " ≥ 100× Python's " + (pipe ? "Pipe (the same calls)" : "multiprocessing.Queue"),
                        ipc, get(python, why), why, 100);
        } else if (size == "1Mi") {
            std::string why_socket;
            auto best = get("kernel.pipe/1Mi", why);
            const auto socket = get("kernel.socketpair/1Mi", why_socket);
            if (!best || (socket && socket->per_second > best->per_second)) best = socket;
            faster_than("1 MiB " + label + " ≥ 1.5× the best kernel channel (pipe or socketpair)", ipc, best,
                        why.empty() ? why_socket : why, 1.5);
        }
    }

    /// Zero copy: small messages as fast as send_bytes, large ones at the speed of the writer's copy.
    void check_loan_targets(const std::string& size, const std::optional<Figure>& ipc) {
        std::string why;
        if (size == "64")
            faster_than("64 B Pipe loan/recv_view ≥ 0.9× send_bytes/recv_bytes_into (the same rate)", ipc,
                        get("ipc.Pipe.send_bytes/64", why), why, 0.9);
        else if (size == "1Mi")
            faster_than("1 MiB Pipe loan/recv_view ≥ 80 % of one memcpy's bytes/s (one copy, the writer's)", ipc,
                        get("memcpy/1Mi", why), why, 0.8);
    }

    void alternatives(std::ostream& out) const {
        out << "### The alternatives, as measured in the same run (messages/s · bytes/s)\n\n";
        const std::vector<std::pair<std::string, std::string>> peers{
            {"kernel.pipe", "kernel pipe"},          {"kernel.socketpair", "socketpair"},
            {"boost.message_queue", "Boost mq"},     {"python.Pipe.send_bytes", "Python Pipe"},
            {"python.Queue", "Python Queue"},        {"memcpy", "memcpy (one process)"}};
        std::vector<std::string> header{"size"};
        for (const auto& peer : peers) header.push_back(peer.second);
        Table table(header);
        for (const auto& [size, bytes] : sizes) {
            std::vector<std::string> row{size_label(size)};
            for (const auto& [name, label] : peers) {
                std::string why;
                const auto figure = get(name + "/" + size, why);
                row.push_back(figure ? rate(figure->per_second) + " · " + byte_rate(figure->bytes_per_second) : why);
            }
            table.add(row);
        }
        table.print(out);
    }

    void round_trips(std::ostream& out) {
        out << "### Round trip of an 8-byte message (ping-pong between two processes)\n\n";
        Table table({"case", "median", "p99", "mean", "× kernel pipe", "× socketpair", "× pipe, busy-polled",
                     "× socketpair, busy-polled", "× Python Pipe", "target"});
        auto row = [&](const std::string& name, const std::string& label, bool target) {
            std::string why;
            const auto ipc = get(name, why);
            auto faster = [&](const std::string& peer) {
                std::string why_peer;
                const auto other = get(peer, why_peer);
                if (!other) return why_peer;
                return ipc ? times(other->median_us / ipc->median_us) : "";
            };
            const auto first_target = targets_.size();
            if (target) {
                const std::string what = "Pipe round trip (8 B) median ≤ 2 µs";
                if (!ipc) targets_.push_back({what, why, Outcome::unknown});
                else
                    targets_.push_back({what, duration(ipc->median_us * 1e-6),
                                        ipc->median_us <= 2.0 ? Outcome::met : Outcome::missed});
            }
            if (!ipc) return table.add({label, why, "", "", "", "", "", "", "", outcome_since(first_target)});
            table.add({label, duration(ipc->median_us * 1e-6), duration(ipc->p99_us * 1e-6),
                       duration(ipc->seconds_per_iteration), faster("kernel.pipe.round_trip"),
                       faster("kernel.socketpair.round_trip"), faster("kernel.pipe.polled.round_trip"),
                       faster("kernel.socketpair.polled.round_trip"), faster("python.Pipe.round_trip"),
                       outcome_since(first_target)});
        };
        row("ipc.Pipe.round_trip", "Pipe send_bytes/recv_bytes_into", true);
        row("ipc.Semaphore.round_trip", "Semaphore release/acquire (no data)", false);
        table.print(out);
        out << "The alternatives' medians: kernel pipe " << median_of("kernel.pipe.round_trip") << ", socketpair "
            << median_of("kernel.socketpair.round_trip") << "; busy-polled (both sides spin on a non-blocking read): "
            << "kernel pipe " << median_of("kernel.pipe.polled.round_trip") << ", socketpair "
            << median_of("kernel.socketpair.polled.round_trip") << "; Python Pipe " << median_of("python.Pipe.round_trip")
            << ".\nA busy-polled channel spins as ipc's waits do, so the ratio to it is what the channel itself "
               "costs; the ratio to the sleeping ones includes what spinning saves.\n\n";
    }

    /// Latency under load: the round trip again while another pair of processes streams 1 MiB
    /// messages through a channel of the same kind.
    void round_trips_under_load(std::ostream& out) {
        if (!results_.find("ipc.Pipe.round_trip.streaming") && !results_.find("kernel.pipe.round_trip.streaming")) return;
        out << "### Round trip of an 8-byte message while another pair streams 1 MiB messages\n\n"
               "Two more processes stream 1 MiB messages as fast as they can through a channel of the same kind "
               "(an ipc Pipe beside the ipc round trip, a kernel pipe beside the kernel pipe's).\n\n";
        Table table({"case", "median, idle", "p99, idle", "median, streaming", "p99, streaming",
                     "× kernel pipe, median", "× kernel pipe, p99", "target"});
        std::string why_pipe;
        const auto pipe = get("kernel.pipe.round_trip.streaming", why_pipe);
        const auto first_target = targets_.size();
        auto add = [&](const std::string& name, const std::string& label, bool ipc) {
            std::string why_idle, why_loaded;
            const auto idle = get(name, why_idle);
            const auto loaded = get(name + ".streaming", why_loaded);
            auto ratio = [&](double Figure::*field) {
                return loaded && pipe ? times((*pipe).*field / (*loaded).*field) : std::string();
            };
            if (ipc) {
                const std::string what = "Pipe round trip (8 B) while another pair streams 1 MiB: median and p99 "
                                         "no slower than a kernel pipe's";
                if (!loaded || !pipe) targets_.push_back({what, loaded ? why_pipe : why_loaded, Outcome::unknown});
                else {
                    const double worst = std::min(pipe->median_us / loaded->median_us, pipe->p99_us / loaded->p99_us);
                    targets_.push_back({what, printf_string("%.3g×", worst), worst >= 1 ? Outcome::met : Outcome::missed});
                }
            }
            const std::string none;
            table.add({label, idle ? duration(idle->median_us * 1e-6) : why_idle,
                       idle ? duration(idle->p99_us * 1e-6) : none,
                       loaded ? duration(loaded->median_us * 1e-6) : why_loaded,
                       loaded ? duration(loaded->p99_us * 1e-6) : none, ipc ? ratio(&Figure::median_us) : none,
                       ipc ? ratio(&Figure::p99_us) : none, ipc ? outcome_since(first_target) : none});
        };
        add("ipc.Pipe.round_trip", "ipc Pipe send_bytes/recv_bytes_into", true);
        add("kernel.pipe.round_trip", "kernel pipe", false);
        table.print(out);
    }

    std::string median_of(const std::string& name) const {
        std::string why;
        const auto figure = get(name, why);
        return figure ? duration(figure->median_us * 1e-6) : why;
    }

    void shared_state(std::ostream& out) const {
        out << "### A shared counter, both processes adding\n\n";
        Table table({"case", "ipc updates/s", "its like in plain shared memory", "× that", "× Python Value under its lock"});
        struct Row {
            std::string name, label, peer, peer_label, python;
        };
        for (const auto& row : std::vector<Row>{
                 {"ipc.Value.lock", "Value += 1 under get_lock()", "posix.mutex.counter", "process-shared pthread mutex",
                  "python.Value.lock"},
                 {"ipc.Value.atomic", "RawValue fetch_add(1)", "std.atomic.fetch_add", "std::atomic fetch_add", ""}}) {
            std::string why;
            const auto ipc = get(row.name, why);
            table.add({row.label, ipc ? rate(ipc->per_second) : why, row.peer_label, ratio_cell(ipc, row.peer),
                       row.python.empty() ? "none (Python has no atomic Value)" : ratio_cell(ipc, row.python)});
        }
        table.print(out);
        out << "The Value's lock is robust (a holder's death is OwnerDied for the next), which a plain pthread "
               "mutex is not.\n\n";
    }

    void managers(std::ostream& out) {
        out << "### Managers: a Manager's dict and list, a BaseManager's registered object, both processes calling\n\n";
        Table table({"case", "ipc calls/s", "Python calls/s", "× Python", "target"});
        for (const auto& [name, label] : std::vector<std::pair<std::string, std::string>>{
                 {"Manager.dict.set_get", "dict: set a key, then get it"}, {"Manager.list.append", "list: append"}}) {
            std::string why, why_python;
            const auto ipc = get("ipc." + name, why);
            const auto python = get("python." + name, why_python);
            const auto first_target = targets_.size();
            faster_than(label + " ≥ 100× Python's Manager calls/s", ipc, python, why_python, 100);
            table.add({label, ipc ? rate(ipc->per_second) : why, python ? rate(python->per_second) : why_python,
                       ratio_cell(ipc, "python." + name), outcome_since(first_target)});
        }
        {
            // A registered type's method runs in the manager process in both: a round trip per call.
            std::string why, why_python;
            const auto ipc = get("ipc.BaseManager.call", why);
            const auto python = get("python.BaseManager.call", why_python);
            const auto first_target = targets_.size();
            faster_than("BaseManager: a registered object's method ≥ 2× Python's calls/s", ipc, python, why_python, 2);
            table.add({"BaseManager: call a registered object's method", ipc ? rate(ipc->per_second) : why,
                       python ? rate(python->per_second) : why_python, ratio_cell(ipc, "python.BaseManager.call"),
                       outcome_since(first_target)});
        }
        table.print(out);
        out << "Python's proxies send every call to the manager process over a socket; ipc's dict and list calls run in "
               "the caller, on the manager's shared heap under its robust lock. A BaseManager's registered object is "
               "called in the manager process in both (a round trip through a shared-memory Connection here).\n\n";
    }

    /// The kernel buffer each peer's channel got: a refused 1 MiB shows here, with the error.
    void buffers(std::ostream& out) const {
        const std::vector<std::pair<std::string, std::string>> peers{
            {"kernel.pipe/64", "kernel pipe"},           {"kernel.socketpair/64", "socketpair"},
            {"python.Pipe.send_bytes/64", "Python Pipe"}, {"python.Queue/64", "Python Queue"},
            {"python.Pipe.round_trip", "Python duplex Pipe (round trip)"}};
        out << "Kernel buffers the peers got (ipc's Pipe and Queue rings are 1 MiB):";
        const char* separator = " ";
        for (const auto& [name, label] : peers) {
            out << separator << label << ' ';
            separator = "; ";
            const auto figure = results_.find(name);
            if (!figure || std::isnan(figure->buffer_bytes)) {
                out << "not reported";
                continue;
            }
            out << binary_size(figure->buffer_bytes);
            if (figure->buffer_errno > 0)
                out << " (raising it to 1 MiB was refused: " << std::strerror(static_cast<int>(figure->buffer_errno)) << ")";
        }
        out << ".\n\n";
    }

    /// Every throughput and round-trip case again, while unrelated processes keep every CPU busy.
    void busy_machine(std::ostream& out) {
        if (!has_busy_figures()) return;
        out << "### With every CPU kept busy by unrelated processes\n\n"
               "The same cases while one busy-looping process per CPU runs beside them (`./run.sh bench` runs these "
               "passes after the idle ones). ipc's waits spin there too, never yielding: a waiter that "
               "sleeps waits for the scheduler as well as for its peer.\n\n";
        Table table({"case", "size", "ipc, idle", "ipc, busy", "kernel pipe, busy", "× kernel pipe, busy", "not slower"});
        double worst = std::numeric_limits<double>::infinity();
        std::string worst_case;
        auto judge = [&](double ratio, const std::string& what) {
            if (!std::isnan(ratio) && ratio < worst) {
                worst = ratio;
                worst_case = what;
            }
            return std::isnan(ratio) ? std::string() : ratio >= 1 ? std::string("yes") : std::string("NO");
        };
        for (const auto& [size, bytes] : sizes) {
            for (const auto& [channel, label] : message_channels) {
                const auto name = "ipc." + channel + "/" + size;
                if (!results_.find(busy_prefix + name)) continue;
                std::string why_idle, why_busy, why_pipe;
                const auto idle = get(name, why_idle);
                const auto busy = get(busy_prefix + name, why_busy);
                const auto pipe = get(busy_prefix + "kernel.pipe/" + size, why_pipe);
                const double ratio = busy && pipe ? busy->per_second / pipe->per_second : nan;
                table.add({label, size_label(size), idle ? rate(idle->per_second) : why_idle,
                           busy ? rate(busy->per_second) : why_busy, pipe ? rate(pipe->per_second) : why_pipe,
                           std::isnan(ratio) ? "" : times(ratio), judge(ratio, size_label(size) + " " + label)});
            }
        }
        for (const auto& [name, label] : std::vector<std::pair<std::string, std::string>>{
                 {"ipc.Pipe.round_trip", "Pipe round trip (8 B), median"},
                 {"ipc.Semaphore.round_trip", "Semaphore round trip, median"}}) {
            if (!results_.find(busy_prefix + name)) continue;
            std::string why_idle, why_busy, why_pipe;
            const auto idle = get(name, why_idle);
            const auto busy = get(busy_prefix + name, why_busy);
            const auto pipe = get(busy_prefix + "kernel.pipe.round_trip", why_pipe);
            const double ratio = busy && pipe ? pipe->median_us / busy->median_us : nan;
            table.add({label, "", idle ? duration(idle->median_us * 1e-6) : why_idle,
                       busy ? duration(busy->median_us * 1e-6) : why_busy, pipe ? duration(pipe->median_us * 1e-6) : why_pipe,
                       std::isnan(ratio) ? "" : times(ratio), judge(ratio, label)});
        }
        table.print(out);
        const std::string what = "with every CPU busy, every case at least a kernel pipe's speed";
        if (worst_case.empty()) targets_.push_back({what, "not measured", Outcome::unknown});
        else
            targets_.push_back({what, printf_string("%.3g×", worst) + " (slowest: " + worst_case + ")",
                                worst >= 1 ? Outcome::met : Outcome::missed});
    }

    [[nodiscard]] bool has_busy_figures() const {
        return results_.find(busy_prefix + "kernel.pipe/64").has_value() ||
               results_.find(busy_prefix + "ipc.Pipe.round_trip").has_value();
    }

    void pool(std::ostream& out) {
        out << "### Pool.map of a trivial function, 2 worker processes, 1000 tasks per map\n\n";
        Table table({"chunksize", "ipc tasks/s", "Python tasks/s", "× Python", "target"});
        for (const std::string chunksize : {"1", "auto"}) {
            std::string why, why_python;
            const auto ipc = get("ipc.Pool.map/chunksize:" + chunksize, why);
            const auto python = get("python.Pool.map/chunksize:" + chunksize, why_python);
            const auto first_target = targets_.size();
            faster_than("Pool.map chunksize " + chunksize + " ≥ 10× Python's tasks/s", ipc, python, why_python, 10);
            table.add({chunksize, ipc ? rate(ipc->per_second) : why, python ? rate(python->per_second) : why_python,
                       ratio_cell(ipc, "python.Pool.map/chunksize:" + chunksize), outcome_since(first_target)});
        }
        table.print(out);
    }

    /// ipc::mpi::Pool on two worker ranks (mpirun -np 3 on this machine) beside mpi4py's executor
    /// and ipc::Pool's two local workers; shown once the run has MPI figures.
    void mpi_pool(std::ostream& out) {
        if (!results_.find("ipc.mpi.Pool.map/chunksize:1")) return;
        out << "### Pool.map on MPI ranks (mpirun -np 3 on this machine: 2 worker ranks)\n\n";
        Table table({"case", "ipc::mpi::Pool", "mpi4py MPIPoolExecutor", "× mpi4py", "ipc::Pool, 2 local workers",
                     "target"});
        const auto row = [&](const std::string& label, const std::string& shape, const std::string& local_name,
                             double factor) {
            const std::string target = "mpi::Pool.map " + shape + " ≥ " + printf_string("%g", factor) + "× mpi4py's";
            std::string why, why_peer, why_local;
            const auto ipc = get("ipc.mpi.Pool.map/" + shape, why);
            const auto peer = get("mpi4py.MPIPoolExecutor.map/" + shape, why_peer);
            const auto local = get(local_name, why_local);
            const auto first_target = targets_.size();
            if (factor > 0) faster_than(target, ipc, peer, why_peer, factor);
            const bool bytes = shape == "1Mi";
            const auto shown = [&](const std::optional<Figure>& figure, const std::string& reason) {
                if (!figure) return reason;
                return bytes ? byte_rate(figure->bytes_per_second) : rate(figure->per_second);
            };
            table.add({label, shown(ipc, why), shown(peer, why_peer),
                       ratio_cell(ipc, "mpi4py.MPIPoolExecutor.map/" + shape), shown(local, why_local),
                       outcome_since(first_target)});
        };
        row("trivial tasks, chunksize 1 (tasks/s)", "chunksize:1", "ipc.Pool.map/chunksize:1", 10);
        row("trivial tasks, chunksize automatic (tasks/s)", "chunksize:auto", "ipc.Pool.map/chunksize:auto", 0);
        row("1 MiB arguments, chunksize 1 (bytes/s)", "1Mi", "ipc.Pool.map/1Mi", 0);
        table.print(out);
        out << "mpi4py's automatic chunksize is ipc's rule for 2 workers (125); ipc::Pool's figures come from "
               "bench_pool (trivial tasks) and bench_mpi_pool (1 MiB) in the same run.\n\n";
    }

    void process_start(std::ostream& out) const {
        out << "### Starting and joining one process\n\n";
        Table table({"start method", "ipc", "Python", "× Python"});
        for (const std::string method : {"fork", "spawn", "forkserver"}) {
            std::string why, why_python;
            const auto ipc = get("ipc.Process.start/" + method, why);
            const auto python = get("python.Process.start/" + method, why_python);
            table.add({method, ipc ? duration(ipc->seconds_per_iteration) : why,
                       python ? duration(python->seconds_per_iteration) : why_python,
                       ipc && python ? times(python->seconds_per_iteration / ipc->seconds_per_iteration)
                                     : (python ? "" : why_python)});
        }
        table.print(out);
    }

    void targets(std::ostream& out) const {
        out << "### Targets (2 processes on this machine)\n\n";
        Table table({"target", "measured", "result"});
        for (const auto& target : targets_)
            table.add({target.what, target.measured,
                       target.outcome == Outcome::met ? "met" : target.outcome == Outcome::missed ? "MISSED" : "not measured"});
        table.print(out);
    }

    const Results& results_;
    bool python_found_;
    std::vector<Target> targets_;
};

int usage() {
    std::cerr << "usage: bench_report [--no-python] [--chart-data FILE] RESULT.json...\n";
    return 2;
}

}  // namespace

int main(int argc, char** argv) {
    bool python_found = true;
    std::string chart_data;
    std::vector<std::string> files;
    for (int i = 1; i < argc; ++i) {
        const std::string argument = argv[i];
        if (argument == "--no-python") python_found = false;
        else if (argument == "--chart-data" && i + 1 < argc) chart_data = argv[++i];
        else if (argument.starts_with("--")) return usage();
        else files.push_back(argument);
    }
    if (files.empty()) return usage();
    try {
        Results results;
        for (const auto& file : files) results.load(file);
        Report report(results, python_found);
        report.print(std::cout);
        if (!chart_data.empty()) {
            std::ofstream out(chart_data);
            report.write_chart_data(out);
            if (!out) throw std::runtime_error("cannot write " + chart_data);
        }
        // The tables show each failure where it belongs; the exit code says there was one.
        if (const auto failed = results.failed(); !failed.empty()) {
            std::cerr << "bench_report: " << failed.size() << " case(s) failed in some pass:";
            for (const auto& name : failed) std::cerr << ' ' << name;
            std::cerr << '\n';
            return 2;
        }
    } catch (const std::exception& e) {
        std::cerr << "bench_report: " << e.what() << '\n';
        return 1;
    }
}
