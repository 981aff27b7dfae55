//! Comparing the kernel's smaps with the model's: a counter the model prints as unknown is left
//! out of the comparison; every other counter must match.

use vmaspace_trace::maps::compare;

fn block(rss: &str, pss: &str) -> String {
    format!(
        "100000000000-100000001000 rw-p 00000000 00:00 0 \nSize:                  4 kB\nRss:           {rss:>8} kB\nPss:           {pss:>8} kB\nVmFlags: rd wr mr mw me ac \n"
    )
}

#[test]
fn unknown_counters_are_skipped_known_ones_compared() {
    let kernel = block("4", "2");
    assert_eq!(compare(&kernel, &block("4", "2")), None);
    // The model does not know Pss: only Rss is compared.
    assert_eq!(compare(&kernel, &block("4", vmaspace::SMAPS_UNKNOWN)), None);
    // Unknown Pss does not hide a wrong Rss.
    let report = compare(&kernel, &block("8", vmaspace::SMAPS_UNKNOWN)).expect("Rss differs");
    assert!(report.contains("Rss"), "{report}");
    // A known but wrong Pss is found.
    assert!(compare(&kernel, &block("4", "4")).is_some());
}

#[test]
fn counter_values_are_the_fields_beyond_the_mandatory_ones() {
    // Rss and Pss are counters; Size and VmFlags are not.
    assert_eq!(vmaspace_trace::maps::counter_values(&block("4", "2")), (2, 0));
    assert_eq!(vmaspace_trace::maps::counter_values(&block("4", vmaspace::SMAPS_UNKNOWN)), (2, 1));
}
