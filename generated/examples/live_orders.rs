//! Live order updates in the browser: a small WebSocket server that pushes
//! every committed change of `Order` (the schema declares `events:` on it)
//! to each connected client, as JSON with its position.
//!
//! ```sh
//! eval "$(bash scripts/services.sh)"      # PostgreSQL, Redis
//! cargo run -p deepalpha-db --example trading          # creates deepalpha_example, writes orders
//! DATABASE_URL=postgres://postgres@127.0.0.1:5432/deepalpha_example \
//!   cargo run -p strata-codegen --bin strata -- sync run schema --to cache &   # change capture
//! cargo run -p deepalpha-db --example live_orders      # ws://127.0.0.1:3000/orders
//! ```
//!
//! Open `http://127.0.0.1:3000/` for a page that prints each change, or
//! connect any WebSocket client to `/orders`. Each message is one change:
//! `{"op":"update","key":{"id":"…"},"row":{…},"position":"0/1A2B3C-0",
//! "committed_at":"…"}` (`row` is `null` for a delete). A client that
//! connects without `from` gets the changes from now on; one that
//! reconnects with `/orders?from=<last position it saw>` gets every later
//! change and nothing before (a change is seen twice only across a
//! reconnect, recognisable by its position). Each client has a
//! subscription of its own (one Redis connection): simple, and fine for a
//! dashboard; thousands of clients would share one subscription instead. Settings: `REDIS_URL`
//! (default `redis://127.0.0.1:6379`), `LIVE_ORDERS_ADDR` (default
//! `127.0.0.1:3000`).

use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use deepalpha_db::Order;
use futures_util::StreamExt;
use strata_sdk::events::{Client, Events, Position};

/// The query of `/orders`.
#[derive(Debug, serde::Deserialize)]
pub struct Resume {
    /// The last position the client saw; absent: changes from now on.
    pub from: Option<String>,
}

/// The app: `/` (a page) and `/orders` (the WebSocket).
pub fn router(client: Client) -> Router {
    Router::new()
        .route("/", get(|| async { Html(PAGE) }))
        .route("/orders", get(orders))
        .with_state(client)
}

async fn orders(
    ws: WebSocketUpgrade,
    Query(q): Query<Resume>,
    State(client): State<Client>,
) -> Response {
    let from = match q.from.as_deref().map(str::parse::<Position>) {
        Some(Ok(p)) => p,
        Some(Err(e)) => {
            return (axum::http::StatusCode::BAD_REQUEST, e.to_string()).into_response()
        }
        // A new client starts now, not with every change the streams hold.
        None => match client.head(<Order as Events>::EVENTS.entity).await {
            Ok(p) => p,
            Err(e) => {
                return (axum::http::StatusCode::SERVICE_UNAVAILABLE, e.to_string()).into_response()
            }
        },
    };
    ws.on_upgrade(move |socket| push(socket, client, from))
}

/// Sends each change as one text message until the client goes away.
async fn push(mut socket: WebSocket, client: Client, from: Position) {
    let mut changes = Box::pin(Order::subscribe(&client, from));
    loop {
        tokio::select! {
            change = changes.next() => {
                let text = match change {
                    Some(Ok(c)) => serde_json::to_string(&c).expect("a change serializes"),
                    Some(Err(e)) => serde_json::json!({ "error": e.to_string() }).to_string(),
                    None => break,
                };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    break;
                }
            }
            msg = socket.recv() => match msg {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
        }
    }
}

const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>live orders</title>
<pre id="log"></pre><script>
let last = null;
function connect() {
  const ws = new WebSocket(`ws://${location.host}/orders` + (last ? `?from=${last}` : ""));
  ws.onmessage = (m) => { const c = JSON.parse(m.data); last = c.position || last;
    document.getElementById("log").textContent += m.data + "\n"; };
  ws.onclose = () => setTimeout(connect, 1000);
}
connect();
</script>"#;

#[allow(dead_code)] // included by a test, which has no use for `main`
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = deepalpha_db::connect_cache_events().await?;
    let addr = std::env::var("LIVE_ORDERS_ADDR").unwrap_or_else(|_| "127.0.0.1:3000".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    let d = <Order as Events>::EVENTS;
    println!(
        "live orders on ws://{addr}/orders (page: http://{addr}/); {} partitions of `{}` under key prefix `{}`",
        d.partitions,
        d.entity,
        client.prefix()
    );
    println!("changes come from change capture: run `strata sync run schema --to cache` alongside");
    axum::serve(listener, router(client)).await?;
    Ok(())
}
