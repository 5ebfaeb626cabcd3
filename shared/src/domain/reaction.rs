//! Reactions: one emoji per reaction, at most [`MAX_EMOJIS`] different ones per message, each
//! with who reacted in the order they did.

use serde::ser::SerializeStruct;
use serde::{Deserialize, Serialize, Serializer};

use unicode_properties::{EmojiStatus, UnicodeEmoji};

use super::ids::UserId;

/// Most different emoji one message carries.
pub const MAX_EMOJIS: usize = 20;

/// Longest emoji accepted, in bytes (the longest in Unicode's list, a family of four with
/// skin tones, is 35).
const MAX_EMOJI_BYTES: usize = 48;

/// One emoji, as Unicode Technical Standard #51 defines a possible emoji (skin tones, flags,
/// keycaps, tag sequences and ZWJ sequences included), in its canonical form, so that "❤" and
/// "❤️" are one reaction. Parsed (`FromStr`) where a client names one; read back from storage as
/// written.
///
/// Checked against the grammar with the emoji properties of `unicode-properties` (a few KB of
/// tables) rather than looked up in Unicode's list of recommended emoji (the `emojis` crate):
/// the list cost the `messages` package 270 KB and took it over its 3 MB budget. The grammar
/// also takes well-formed sequences that are not on the list (two people in a ZWJ sequence no
/// vendor draws, say), which render as their parts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Emoji(String);

/// Why a string is not one emoji.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not one emoji")]
pub struct NotAnEmoji;

impl std::str::FromStr for Emoji {
    type Err = NotAnEmoji;

    fn from_str(text: &str) -> Result<Self, NotAnEmoji> {
        if text.is_empty() || text.len() > MAX_EMOJI_BYTES {
            return Err(NotAnEmoji);
        }
        canonical(text).map(Emoji).ok_or(NotAnEmoji)
    }
}

const ZWJ: char = '\u{200D}';
const VS16: char = '\u{FE0F}';
const KEYCAP: char = '\u{20E3}';
const TAG_END: char = '\u{E007F}';

fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

fn is_tag(c: char) -> bool {
    ('\u{E0020}'..='\u{E007E}').contains(&c)
}

/// The text as one possible emoji (UTS #51, section 1.4.9, "EBNF and Regex"), in the form the
/// emoji list writes it:
///
/// ```text
/// possible_emoji     := zwj_element (U+200D zwj_element)*
/// zwj_element        := RI RI | \p{Emoji} emoji_modification?
/// emoji_modification := \p{Emoji_Modifier} | U+FE0F U+20E3? | [U+E0020-U+E007E]+ U+E007F
/// ```
///
/// narrowed where the grammar is looser than any emoji: a digit, `#` or `*` counts only as a
/// keycap, a keycap only on those, and a skin tone only on a modifier base. Canonical form: each
/// element whose base is not shown as emoji by default (`Emoji_Presentation=No`) and takes no
/// modifier carries U+FE0F, and a keycap is base, U+FE0F, U+20E3.
fn canonical(text: &str) -> Option<String> {
    let mut out = String::with_capacity(text.len() + 4);
    let mut chars = text.chars().peekable();
    loop {
        let base = chars.next()?;
        out.push(base);
        if is_regional_indicator(base) {
            out.push(chars.next().filter(|c| is_regional_indicator(*c))?);
        } else {
            let status = base.emoji_status();
            if !base.is_emoji_char() {
                return None;
            }
            let keycap_base = matches!(status, EmojiStatus::EmojiOtherAndEmojiComponent);
            let modifier_base = matches!(
                status,
                EmojiStatus::EmojiModifierBase | EmojiStatus::EmojiPresentationAndModifierBase
            );
            let shown_as_emoji = matches!(
                status,
                EmojiStatus::EmojiPresentation
                    | EmojiStatus::EmojiPresentationAndModifierBase
                    | EmojiStatus::EmojiPresentationAndEmojiComponent
                    | EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
            );
            match chars.peek().copied() {
                Some(c)
                    if matches!(
                        c.emoji_status(),
                        EmojiStatus::EmojiPresentationAndModifierAndEmojiComponent
                    ) =>
                {
                    if !modifier_base {
                        return None;
                    }
                    out.push(c);
                    chars.next();
                }
                Some(c) if is_tag(c) => {
                    while let Some(tag) = chars.next_if(|c| is_tag(*c)) {
                        out.push(tag);
                    }
                    out.push(chars.next().filter(|c| *c == TAG_END)?);
                }
                next => {
                    if next == Some(VS16) {
                        chars.next();
                    }
                    let keycap = chars.next_if_eq(&KEYCAP).is_some();
                    if keycap != keycap_base {
                        return None;
                    }
                    if !shown_as_emoji {
                        out.push(VS16);
                    }
                    if keycap {
                        out.push(KEYCAP);
                    }
                }
            }
        }
        match chars.next() {
            None => return Some(out),
            Some(ZWJ) => out.push(ZWJ),
            Some(_) => return None,
        }
    }
}

impl Emoji {
    /// The emoji's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Emoji {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One emoji's reactions to a message: who reacted with it, in the order they did. The message
/// lists its reactions in the order each emoji was first used.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Reaction {
    /// The emoji.
    pub emoji: Emoji,
    /// Who reacted with it (never empty).
    pub users: Vec<UserId>,
    /// Whether the reader of this representation is among them; only answers to a request
    /// say it (an event goes to everyone alike).
    #[serde(skip)]
    pub me: Option<bool>,
}

impl Serialize for Reaction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut r = s.serialize_struct("Reaction", if self.me.is_some() { 4 } else { 3 })?;
        r.serialize_field("emoji", &self.emoji)?;
        r.serialize_field("count", &self.users.len())?;
        if let Some(me) = self.me {
            r.serialize_field("me", &me)?;
        }
        r.serialize_field("users", &self.users)?;
        r.end()
    }
}

/// Why a reaction cannot be added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TooMany {
    /// The message has [`MAX_EMOJIS`] different emoji already.
    Emojis,
}

/// `reactions` with `user`'s reaction `emoji` added (`on`) or taken away; `Ok(None)` when that
/// changes nothing (it is so already), so that both are idempotent.
pub fn react(
    reactions: &[Reaction],
    user: &UserId,
    emoji: &Emoji,
    on: bool,
) -> Result<Option<Vec<Reaction>>, TooMany> {
    let mut after: Vec<Reaction> = reactions.to_vec();
    match after.iter_mut().position(|r| &r.emoji == emoji) {
        Some(i) if on => {
            if after[i].users.contains(user) {
                return Ok(None);
            }
            after[i].users.push(user.clone());
        }
        Some(i) => {
            let before = after[i].users.len();
            after[i].users.retain(|u| u != user);
            if after[i].users.len() == before {
                return Ok(None);
            }
            if after[i].users.is_empty() {
                after.remove(i);
            }
        }
        None if on => {
            if after.len() >= MAX_EMOJIS {
                return Err(TooMany::Emojis);
            }
            after.push(Reaction { emoji: emoji.clone(), users: vec![user.clone()], me: None });
        }
        None => return Ok(None),
    }
    Ok(Some(after))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::id;

    fn e(text: &str) -> Emoji {
        text.parse().unwrap()
    }

    #[test]
    fn one_emoji_in_its_one_form_is_an_emoji_and_nothing_else_is() {
        // Each in the form Unicode's emoji list writes it, which is also its canonical form.
        let listed =
            ["👍", "❤️", "👍🏽", "🇫🇷", "👩‍👩‍👧‍👦", "🫠", "#️⃣", "1️⃣", "©️", "🏴󠁧󠁢󠁳󠁣󠁴󠁿", "🏳️‍🌈", "❤️‍🔥", "👁️‍🗨️", "🧑🏽‍🚀", "🏻"];
        for ok in listed {
            assert_eq!(ok.parse::<Emoji>().map(|e| e.0), Ok(ok.to_owned()), "{ok}");
        }
        for bad in [
            "",
            "a",
            "1",
            "#",
            "👍👍",
            "👍 ",
            ":+1:",
            "<b>",
            "😀x",
            "🇫",
            "🇫🇷🇫",
            "a\u{20E3}",
            "🫠\u{20E3}",
            "😀🏽",
            "👍\u{200D}",
            "\u{200D}👍",
            "🏴\u{E0067}",
            "\u{FE0F}",
            &"👍".repeat(20),
        ] {
            assert!(bad.parse::<Emoji>().is_err(), "{bad:?}");
        }
        assert_eq!(e("❤"), e("❤️"), "one reaction whichever form the client sends");
        assert_eq!(e("#\u{20E3}"), e("#️⃣"));
        assert_eq!(e("🏳\u{200D}🌈"), e("🏳️‍🌈"));
    }

    #[test]
    fn reactions_keep_the_order_first_used_and_are_idempotent() {
        let (a, b) = (id("a"), id("b"));
        let one = react(&[], &a, &e("👍"), true).unwrap().unwrap();
        let two = react(&one, &b, &e("🎉"), true).unwrap().unwrap();
        let three = react(&two, &b, &e("👍"), true).unwrap().unwrap();
        let shown: Vec<(&str, usize)> = three.iter().map(|r| (r.emoji.as_str(), r.users.len())).collect();
        assert_eq!(shown, [("👍", 2), ("🎉", 1)]);
        assert_eq!(react(&three, &b, &e("👍"), true), Ok(None), "the same reaction again changes nothing");
        assert_eq!(react(&three, &a, &e("🎉"), false), Ok(None), "taking away what is not there neither");
        let gone = react(&three, &b, &e("🎉"), false).unwrap().unwrap();
        assert_eq!(gone.len(), 1, "an emoji nobody uses any more goes");
    }

    #[test]
    fn a_message_holds_twenty_different_emoji() {
        let a = id("a");
        let mut all = Vec::new();
        for emoji in crate::domain::testing::EMOJI.iter().take(MAX_EMOJIS) {
            all = react(&all, &a, &e(emoji), true).unwrap().unwrap();
        }
        let next = crate::domain::testing::EMOJI[MAX_EMOJIS];
        assert_eq!(react(&all, &a, &e(next), true), Err(TooMany::Emojis));
        assert!(
            react(&all, &id("b"), &all[0].emoji.clone(), true).unwrap().is_some(),
            "one already there is fine"
        );
    }

    #[test]
    fn a_reaction_shows_its_count_and_says_me_only_when_asked() {
        let r = Reaction { emoji: e("👍"), users: vec![id("a"), id("b")], me: None };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            serde_json::json!({"emoji": "👍", "count": 2, "users": ["a", "b"]})
        );
        let mine = Reaction { me: Some(true), ..r };
        assert_eq!(serde_json::to_value(&mine).unwrap()["me"], true);
        let back: Reaction = serde_json::from_value(serde_json::to_value(&mine).unwrap()).unwrap();
        assert_eq!(back.me, None, "stored reactions never say whose view they are");
    }
}
