//! The storage handle the server hands out before the TSDB has opened.
//!
//! The web server starts first (so `/-/healthy` answers during a long WAL
//! replay); it needs a `Queryable` at construction. `LateStorage` is that
//! handle: it reports "not ready" until the `Db` is set, then delegates.

use std::sync::{Arc, OnceLock};
use vigil_model::storage::{Appendable, Appender, Querier, Queryable, SeriesRef, StorageError};
use vigil_model::Labels;
use vigil_tsdb::db::Db;

#[derive(Clone, Default)]
pub struct LateStorage {
    db: Arc<OnceLock<Db>>,
}

impl LateStorage {
    pub fn set(&self, db: Db) {
        let _ = self.db.set(db);
    }

    pub fn get(&self) -> Option<&Db> {
        self.db.get()
    }
}

fn not_ready() -> StorageError {
    StorageError::Io("TSDB not ready: WAL replay in progress".to_string())
}

impl Queryable for LateStorage {
    fn querier(&self, mint: i64, maxt: i64) -> Result<Box<dyn Querier>, StorageError> {
        match self.db.get() {
            Some(db) => db.querier(mint, maxt),
            None => Err(not_ready()),
        }
    }
}

impl Appendable for LateStorage {
    fn appender(&self) -> Box<dyn Appender> {
        match self.db.get() {
            Some(db) => db.appender(),
            None => Box::new(NotReadyAppender),
        }
    }
}

/// Rejects every append until the TSDB is open.
struct NotReadyAppender;

impl Appender for NotReadyAppender {
    fn append(
        &mut self,
        _: SeriesRef,
        _: &Labels,
        _: i64,
        _: f64,
    ) -> Result<SeriesRef, StorageError> {
        Err(not_ready())
    }
    fn commit(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
    fn rollback(&mut self) -> Result<(), StorageError> {
        Ok(())
    }
}
