//! The standard `process_*` metrics of the Prometheus client libraries (CPU time,
//! memory, file descriptors, start time), read from `/proc/self` at each scrape.
//!
//! Only `/proc/self` is read, never `/proc/stat`: the unit's `ProcSubset=pid` hides
//! everything in `/proc` but the process directories. The start time comes from the
//! process's start in clock ticks after boot and the boot-time clock instead.
//! A file that cannot be read leaves its metrics out of that scrape.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Unit;

/// The collector of the `process_*` metrics; registered without a prefix.
#[derive(Debug, Default)]
pub struct ProcessCollector;

/// What `/proc/self/stat` says, in the units the metrics use.
#[derive(Debug, PartialEq)]
struct Stat {
    cpu_seconds: f64,
    /// Seconds from boot to the process's start.
    started_after_boot: f64,
    virtual_bytes: u64,
    resident_bytes: u64,
}

/// Reads the fields of `/proc/self/stat` after the command name, which is in
/// parentheses and may itself hold spaces and parentheses.
fn parse_stat(text: &str, ticks_per_second: u64, page_size: u64) -> Option<Stat> {
    let fields: Vec<&str> = text
        .get(text.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    // proc(5) numbers the fields from 1, the pid; `fields[0]` is field 3, the state.
    let field = |number: usize| fields.get(number - 3)?.parse::<u64>().ok();
    let ticks = ticks_per_second as f64;
    Some(Stat {
        cpu_seconds: (field(14)? + field(15)?) as f64 / ticks,
        started_after_boot: field(22)? as f64 / ticks,
        virtual_bytes: field(23)?,
        resident_bytes: field(24)? * page_size,
    })
}

/// The soft limit of open files, from `/proc/self/limits`; `None` when unlimited.
fn parse_max_fds(limits: &str) -> Option<u64> {
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Unix time now, minus the time since boot: when the machine booted.
fn boot_time() -> f64 {
    let since_boot = rustix::time::clock_gettime(rustix::time::ClockId::Boottime);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_secs_f64() - (since_boot.tv_sec as f64 + since_boot.tv_nsec as f64 * 1e-9)
}

fn gauge<N>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    value: N,
) -> Result<(), std::fmt::Error>
where
    ConstGauge<N>: EncodeMetric,
{
    let gauge = ConstGauge::new(value);
    gauge.encode(encoder.encode_descriptor(name, help, unit, gauge.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| {
                let ticks = rustix::param::clock_ticks_per_second();
                parse_stat(&text, ticks, rustix::param::page_size() as u64)
            });
        if let Some(stat) = stat {
            let cpu = ConstCounter::new(stat.cpu_seconds);
            cpu.encode(encoder.encode_descriptor(
                "process_cpu",
                "Total user and system CPU time spent in seconds",
                Some(&Unit::Seconds),
                cpu.metric_type(),
            )?)?;
            let bytes = Some(&Unit::Bytes);
            let resident = i64::try_from(stat.resident_bytes).unwrap_or(i64::MAX);
            let virt = i64::try_from(stat.virtual_bytes).unwrap_or(i64::MAX);
            gauge(
                &mut encoder,
                "process_resident_memory",
                "Resident memory size in bytes",
                bytes,
                resident,
            )?;
            gauge(
                &mut encoder,
                "process_virtual_memory",
                "Virtual memory size in bytes",
                bytes,
                virt,
            )?;
            gauge(
                &mut encoder,
                "process_start_time",
                "Start time of the process since unix epoch in seconds",
                Some(&Unit::Seconds),
                (boot_time() + stat.started_after_boot).round(),
            )?;
        }
        if let Ok(entries) = std::fs::read_dir("/proc/self/fd") {
            let open = entries.count() as i64;
            let help = "Number of open file descriptors";
            gauge(&mut encoder, "process_open_fds", help, None, open)?;
        }
        let limits = std::fs::read_to_string("/proc/self/limits").ok();
        if let Some(max) = limits.as_deref().and_then(parse_max_fds) {
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            let help = "Maximum number of open file descriptors";
            gauge(&mut encoder, "process_max_fds", help, None, max)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        // A command name with a space and a parenthesis, as a process may set.
        let text = "4242 (tri (x) y) S 1 4242 4242 0 -1 4194560 900 0 0 0 \
                    250 50 0 0 20 0 9 0 12345 104857600 2560 18446744073709551615 \
                    1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0";
        let stat = parse_stat(text, 100, 4096).unwrap();
        assert_eq!(
            stat,
            Stat {
                cpu_seconds: 3.0,
                started_after_boot: 123.45,
                virtual_bytes: 104_857_600,
                resident_bytes: 2560 * 4096,
            }
        );
        assert_eq!(parse_stat("4242 (cut", 100, 4096), None);
        assert_eq!(parse_stat("4242 (x) S 1 2", 100, 4096), None);
    }

    #[test]
    fn the_soft_limit_of_open_files() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max processes             127447               127447               processes \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(parse_max_fds(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(parse_max_fds(unlimited), None);
    }
}
