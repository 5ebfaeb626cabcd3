//! Each function's `MemorySize`, from its measured warm CPU.
//!
//! Lambda allots CPU in proportion to memory and gives a function the equivalent of one vCPU at
//! 1,769 MB ("At 1,769 MB, a function has the equivalent of one vCPU",
//! https://docs.aws.amazon.com/lambda/latest/dg/configuration-memory.html). So the CPU a warm
//! invocation uses on a whole core here takes about 1,769 / memory times as long there, and is
//! billed for that long at that memory: below 1,769 MB the CPU part of the bill is the same at
//! every size, and only the time spent waiting on DynamoDB grows with memory. The cheapest size
//! is therefore the smallest one at which the CPU does not hold a request up for too long.

use std::collections::BTreeMap;

use serde_yaml_ng::Value;

/// Memory at which Lambda gives a function one whole vCPU, MB.
pub const FULL_CPU_MB: f64 = 1769.0;
/// The sizes considered, MB (any whole MB from 128 to 10,240 is allowed; these are the steps
/// at which the CPU share doubles, and the size of one whole vCPU).
pub const SIZES: [u64; 5] = [128, 256, 512, 1024, 1769];
/// How long a warm API request's CPU may take at its memory size: a small share of the time a
/// user waits on a request that also makes DynamoDB round trips.
pub const REQUEST_CPU_BOUND_MS: f64 = 50.0;
/// The same for a login, which hashes a password on purpose and happens once per session.
pub const LOGIN_CPU_BOUND_MS: f64 = 250.0;

/// How long `cpu_us` of CPU on a whole core takes at `memory_mb`, ms.
pub fn stretched_ms(cpu_us: f64, memory_mb: f64) -> f64 {
    cpu_us / 1000.0 * (FULL_CPU_MB / memory_mb).max(1.0)
}

/// The smallest size in [`SIZES`] at which `cpu_us` takes at most `bound_ms` (the largest if
/// none does).
pub fn size_for(cpu_us: f64, bound_ms: f64) -> u64 {
    SIZES.into_iter().find(|&mb| stretched_ms(cpu_us, mb as f64) <= bound_ms).unwrap_or(FULL_CPU_MB as u64)
}

/// Each function binary's `MemorySize` in a SAM template: its own, or the `Globals` one.
pub fn template_sizes(template: &str) -> Result<BTreeMap<String, u64>, String> {
    let t: Value = serde_yaml_ng::from_str(template).map_err(|e| format!("template: {e}"))?;
    let global = t["Globals"]["Function"]["MemorySize"].as_u64();
    let resources = t["Resources"].as_mapping().ok_or("template: no Resources")?;
    let mut sizes = BTreeMap::new();
    for (id, r) in resources {
        if r["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let id = id.as_str().unwrap_or("?");
        let binary = r["Metadata"]["BuildProperties"]["Binary"]
            .as_str()
            .ok_or_else(|| format!("template: {id} has no Metadata.BuildProperties.Binary"))?;
        let size = r["Properties"]["MemorySize"]
            .as_u64()
            .or(global)
            .ok_or_else(|| format!("template: {id} has no MemorySize, nor Globals"))?;
        sizes.insert(binary.to_owned(), size);
    }
    Ok(sizes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_size_is_the_smallest_at_which_the_cpu_fits_its_bound() {
        // 1 ms on a whole core is 13.8 ms at 128 MB.
        assert!((stretched_ms(1000.0, 128.0) - 13.82).abs() < 0.01);
        assert_eq!(stretched_ms(1000.0, 3008.0), 1.0, "no faster than one whole vCPU");
        assert_eq!(size_for(2500.0, REQUEST_CPU_BOUND_MS), 128);
        assert_eq!(size_for(5000.0, REQUEST_CPU_BOUND_MS), 256);
        // A 50 ms login: 691 ms at 128 MB, 173 ms at 512.
        assert_eq!(size_for(50_000.0, LOGIN_CPU_BOUND_MS), 512);
        assert_eq!(size_for(1e9, LOGIN_CPU_BOUND_MS), 1769);
    }

    #[test]
    fn reads_each_functions_size_from_the_template() {
        let sizes = template_sizes(&std::fs::read_to_string("../template.yaml").unwrap()).unwrap();
        assert_eq!(sizes.get("token"), Some(&512));
        assert_eq!(sizes.get("messages"), Some(&128));
        assert_eq!(sizes.len(), 9, "{sizes:?}");
    }
}
