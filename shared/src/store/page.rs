//! Keyset pages as the store reads them: where to start, which way, how many. Nothing here
//! knows HTTP; `crate::http::pagination` turns requests and cursors into these and back.

/// Which way a page goes from its start position, in display order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Items after the position (further down the list).
    Forward,
    /// Items before the position (back towards the top of the list).
    Backward,
}

/// One page to read: after which sort key (exclusive), which way, and how many items.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageSpec {
    /// The sort key to start after; `None` for the top of the list.
    pub after: Option<String>,
    /// Which way to read from `after`. Ignored without `after`: the first page reads forward.
    pub direction: Direction,
    /// How many items.
    pub limit: usize,
}

impl PageSpec {
    /// The first `limit` items of a list.
    pub fn first(limit: usize) -> Self {
        Self { after: None, direction: Direction::Forward, limit }
    }

    /// True when the page is read backwards from its start (a `previous` link).
    pub fn backwards(&self) -> bool {
        self.after.is_some() && self.direction == Direction::Backward
    }

    /// Makes this page from up to `limit + 1` items fetched in reading order: the extra one only
    /// shows that more exist. Items come back in display order, with the sort keys of the ends.
    pub fn cut<T>(&self, mut items: Vec<T>, sort_key: impl Fn(&T) -> Option<String>) -> Slice<T> {
        let backwards = self.backwards();
        let more = items.len() > self.limit;
        items.truncate(self.limit);
        if backwards {
            items.reverse();
        }
        let (has_next, has_previous) = match (&self.after, backwards) {
            (None, _) => (more, false),
            (Some(_), false) => (more, true),
            (Some(_), true) => (true, more),
        };
        Slice {
            first_key: items.first().and_then(&sort_key),
            last_key: items.last().and_then(&sort_key),
            has_next: has_next && !items.is_empty(),
            has_previous: has_previous && !items.is_empty(),
            items,
        }
    }
}

/// One page as the store returns it: items in display order, with the sort keys at its ends
/// and whether more exist beyond each end.
#[derive(Debug, PartialEq, Eq)]
pub struct Slice<T> {
    /// Items, in display order.
    pub items: Vec<T>,
    /// Sort key of the first item.
    pub first_key: Option<String>,
    /// Sort key of the last item.
    pub last_key: Option<String>,
    /// More items exist after the last one.
    pub has_next: bool,
    /// More items exist before the first one.
    pub has_previous: bool,
}

impl<T> Slice<T> {
    /// A page with nothing on it.
    pub fn empty() -> Self {
        Slice { items: Vec::new(), first_key: None, last_key: None, has_next: false, has_previous: false }
    }

    /// Converts every item, keeping the page's ends and flags.
    pub fn map<U>(self, mut f: impl FnMut(T) -> U) -> Slice<U> {
        match self.try_map(|t| Ok::<_, std::convert::Infallible>(f(t))) {
            Ok(slice) => slice,
        }
    }

    /// Converts every item fallibly, keeping the page's ends and flags.
    pub fn try_map<U, E>(self, f: impl FnMut(T) -> Result<U, E>) -> Result<Slice<U>, E> {
        Ok(Slice {
            items: self.items.into_iter().map(f).collect::<Result<_, _>>()?,
            first_key: self.first_key,
            last_key: self.last_key,
            has_next: self.has_next,
            has_previous: self.has_previous,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: &u32) -> Option<String> {
        Some(format!("{i:03}"))
    }

    fn after(k: &str, direction: Direction, limit: usize) -> PageSpec {
        PageSpec { after: Some(k.into()), direction, limit }
    }

    #[test]
    fn first_page_shows_next_only_when_more_exist() {
        let page = PageSpec::first(3);
        let s = page.cut(vec![1, 2, 3, 4], key);
        assert_eq!(s.items, [1, 2, 3]);
        assert_eq!((s.first_key.as_deref(), s.last_key.as_deref()), (Some("001"), Some("003")));
        assert!(s.has_next && !s.has_previous);
        let s = page.cut(vec![1, 2, 3], key);
        assert!(!s.has_next && !s.has_previous);
    }

    #[test]
    fn forward_page_after_a_key_has_a_previous_page() {
        let s = after("003", Direction::Forward, 2).cut(vec![4, 5, 6], key);
        assert_eq!(s.items, [4, 5]);
        assert!(s.has_next && s.has_previous);
        let s = after("003", Direction::Forward, 2).cut(vec![4], key);
        assert!(!s.has_next && s.has_previous);
    }

    #[test]
    fn backward_page_comes_back_in_display_order() {
        // Read backwards from key 7: the store fetched 6, 5, 4 (reading order).
        let s = after("007", Direction::Backward, 2).cut(vec![6, 5, 4], key);
        assert_eq!(s.items, [5, 6]);
        assert_eq!(s.last_key.as_deref(), Some("006"));
        assert!(s.has_next && s.has_previous);
        let s = after("007", Direction::Backward, 2).cut(vec![6, 5], key);
        assert!(s.has_next && !s.has_previous, "the top of the list was reached");
    }

    #[test]
    fn direction_without_a_start_key_reads_forward() {
        let page = PageSpec { after: None, direction: Direction::Backward, limit: 2 };
        assert!(!page.backwards());
        assert_eq!(page.cut(vec![1, 2, 3], key).items, [1, 2]);
    }

    #[test]
    fn an_empty_page_links_nowhere() {
        let s = after("003", Direction::Forward, 2).cut(Vec::<u32>::new(), key);
        assert!(s.items.is_empty() && !s.has_next && !s.has_previous);
        assert_eq!(s.first_key, None);
    }

    #[test]
    fn map_keeps_the_ends() {
        let s = PageSpec::first(1).cut(vec![1, 2], key).map(|i| i * 10);
        assert_eq!(s.items, [10]);
        assert!(s.has_next);
        assert_eq!(s.last_key.as_deref(), Some("001"));
    }
}
