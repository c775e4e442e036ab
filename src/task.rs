//! Work that must not hold an async worker: blocking file work (hashing, reading, writing) goes to
//! the runtime's blocking threads, and a spawned task stops when the future awaiting it is dropped.

/// Runs blocking file work (hashing, reading, writing) on the runtime's blocking threads.
///
/// `block_in_place` would freeze every other future of the calling task: transfers polled
/// together by one `buffer_unordered` would then move one blob at a time whatever the number
/// of workers. The closure owns what it works on and hands it back.
pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(v) => v,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        // Blocking tasks are only cancelled when the runtime shuts down.
        Err(e) => panic!("blocking task did not finish: {e}"),
    }
}

/// Aborts a spawned task when dropped, so a failed transfer stops its siblings.
pub struct AbortOnDrop<T>(pub tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl<T> std::future::Future for AbortOnDrop<T> {
    type Output = T;
    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<T> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| match r {
            Ok(v) => v,
            Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
            Err(_) => panic!("transfer task cancelled while awaited"),
        })
    }
}
