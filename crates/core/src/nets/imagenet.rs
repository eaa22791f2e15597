//! The 1000 ImageNet class names, in the order of the classifiers' outputs.

const NAMES: &str = include_str!("imagenet_classes.txt");

/// The class names, index = output unit.
pub fn class_names() -> Vec<String> {
    NAMES.lines().map(str::to_string).collect()
}
