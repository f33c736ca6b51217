//! The one formatter of generated Rust, shared by build.rs, the CLI and tests.

use proc_macro2::TokenStream;

/// Formats generated tokens with prettyplease and puts the `@generated`
/// header on top. Tokens that do not parse as a file are a bug in a back end,
/// so this panics with the offending text rather than writing broken code.
pub fn format_file(tokens: TokenStream) -> String {
    let file: syn::File = match syn::parse2(tokens.clone()) {
        Ok(f) => f,
        Err(e) => panic!("strata-codegen generated Rust that does not parse ({e}):\n{tokens}"),
    };
    format!(
        "{}\n{}",
        crate::files::header("//"),
        prettyplease::unparse(&file)
    )
}
