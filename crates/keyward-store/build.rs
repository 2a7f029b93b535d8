//! Rebuild when a migration is added or changed: `sqlx::migrate!` embeds the migration files at
//! compile time, and Cargo would not otherwise notice a new file in these directories.

fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
