//! The ChatML prompt format (`<|im_start|>role\ncontent<|im_end|>`) that SmolLM2 and many instruct
//! models use, and reading a chat template's default system message.
//!
//! Layer: models (generation). ferrite renders ChatML only; it does not run arbitrary Jinja.

use ferrite_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// One turn of a conversation (OpenAI's `{"role", "content"}`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// A ChatML prompt (`<|im_start|>role\ncontent<|im_end|>\n` per message, then
/// `<|im_start|>assistant\n`), with `default_system` prepended when the conversation does not
/// start with a system message — what SmolLM2's chat template renders.
pub fn chatml_prompt(messages: &[Message], default_system: Option<&str>) -> String {
    let mut s = String::new();
    if let (Some(sys), Some(first)) = (default_system, messages.first())
        && first.role != "system"
    {
        s.push_str(&format!("<|im_start|>system\n{sys}<|im_end|>\n"));
    }
    for m in messages {
        s.push_str(&format!("<|im_start|>{}\n{}<|im_end|>\n", m.role, m.content));
    }
    s.push_str("<|im_start|>assistant\n");
    s
}

/// The default system message of a ChatML Jinja template like SmolLM2's
/// (`…'<|im_start|>system\nYou are …<|im_end|>\n'…`), if it has one.
///
/// # Errors
/// A template that is not ChatML.
pub fn chatml_default_system(template: &str) -> Result<Option<String>> {
    if !template.contains("<|im_start|>") {
        return Err(Error::Invalid {
            op: "chat",
            detail: "the model's chat template is not ChatML (<|im_start|>…<|im_end|>); ferrite renders ChatML only"
                .into(),
        });
    }
    let marker = "<|im_start|>system\n";
    Ok(template.find(marker).and_then(|i| {
        let rest = &template[i + marker.len()..];
        rest.find("<|im_end|>").map(|j| rest[..j].to_string())
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chatml_rendering() {
        let m = [Message {
            role: "user".into(),
            content: "Hi".into(),
        }];
        assert_eq!(
            chatml_prompt(&m, Some("Be brief.")),
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        );
        let t = "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM<|im_end|>\n' }}";
        assert_eq!(
            chatml_default_system(t).unwrap().as_deref(),
            Some("You are a helpful AI assistant named SmolLM")
        );
        assert!(chatml_default_system("{{ bos_token }}[INST]").is_err());
    }
}
