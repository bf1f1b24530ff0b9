//! The embedded provider: a GGUF model run in-process by llama.cpp (feature `embedded`).
//!
//! The llama.cpp backend is initialized once per process; a GGUF file is loaded once per
//! process and shared (by path) between providers and turns. Every call formats the
//! conversation with the model's own chat template (for a file without one, llama.cpp's built-in
//! template of its architecture, such as `gemma`; else ChatML), checks that prompt and reply fit the context, and, when the request
//! carries the turn's JSON schema, samples under the GBNF grammar llama.cpp derives from it, so
//! the reply is always schema-valid JSON (unless `max_tokens` cuts it short). Generation runs
//! on tokio's blocking pool, one call at a time per process: the machine's cores are shared.
//! A call's `timeout` bounds its own work (waiting for another call to finish does not
//! count); a caller that stops waiting (drops the future) stops the generation too.

use crate::provider::{ChatRole, ModelReply, ModelRequest, Provider, ProviderError};
use async_trait::async_trait;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::{LlamaChatMessage, LlamaChatTemplate, LlamaModel};
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use llama_cpp_2::vocab::LlamaVocab;
use llama_cpp_2::{LlamaCppError, LogOptions};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};

const PROVIDER: &str = "embedded";

/// The sampling seed when the request has none.
const DEFAULT_SEED: u32 = 42;

/// Contexts are sized to the call, rounded up to this many tokens.
const CONTEXT_GRANULE: u32 = 256;

/// How the embedded provider runs its model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// The context size in tokens: prompt plus reply must fit (default 4096).
    pub n_ctx: u32,
    /// CPU threads for generation (default: all available cores).
    pub threads: Option<i32>,
    /// The reply's token limit when the request sets none (default 512).
    pub max_tokens_default: u32,
}

impl Default for EmbeddedOptions {
    fn default() -> Self {
        EmbeddedOptions {
            n_ctx: 4096,
            threads: None,
            max_tokens_default: 512,
        }
    }
}

/// Timings of one generation, for benchmarks.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GenerationStats {
    /// Tokens of the prompt.
    pub prompt_tokens: u64,
    /// Tokens generated (the end-of-generation token not counted).
    pub completion_tokens: u64,
    /// Time to set up the context and evaluate the prompt, in milliseconds.
    pub prompt_ms: f64,
    /// Time from the evaluated prompt to the end of the reply, in milliseconds.
    pub generation_ms: f64,
    /// Generation speed: completion tokens per second of `generation_ms`.
    pub tokens_per_second: f64,
    /// Time from the start of the work (after waiting for other generations) to the first
    /// generated token, in milliseconds.
    pub time_to_first_token_ms: f64,
}

/// A GGUF model run in-process by llama.cpp.
#[derive(Clone)]
pub struct EmbeddedProvider {
    model: Arc<LoadedModel>,
    options: EmbeddedOptions,
    name: String,
    last_stats: Arc<Mutex<Option<GenerationStats>>>,
}

impl std::fmt::Debug for EmbeddedProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddedProvider")
            .field("path", &self.model.path)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A loaded model with its chat template.
struct LoadedModel {
    path: PathBuf,
    model: LlamaModel,
    template: LlamaChatTemplate,
}

/// The process's llama.cpp backend, initialized on first use.
fn backend() -> Result<&'static LlamaBackend, ProviderError> {
    static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            // llama.cpp logs every tensor it loads; keep that out of the user's terminal
            // unless asked for (`ORKET_LLAMA_LOG=1` sends it to tracing).
            let enabled = std::env::var_os("ORKET_LLAMA_LOG").is_some_and(|v| v != "0");
            llama_cpp_2::send_logs_to_tracing(LogOptions::default().with_logs_enabled(enabled));
            match LlamaBackend::init() {
                Ok(backend) => Ok(backend),
                // Someone else in this process initialized llama.cpp: it is ready to use, and
                // the value is only a token of that (never dropped, as it lives in a static).
                Err(LlamaCppError::BackendAlreadyInitialized) => Ok(LlamaBackend {}),
                Err(e) => Err(format!("cannot initialize llama.cpp: {e}")),
            }
        })
        .as_ref()
        .map_err(|e| ProviderError::Other(e.clone()))
}

/// Models loaded in this process, by canonical path (weak: a model is freed with its last
/// provider).
fn loaded_models() -> MutexGuard<'static, HashMap<PathBuf, Weak<LoadedModel>>> {
    static MODELS: OnceLock<Mutex<HashMap<PathBuf, Weak<LoadedModel>>>> = OnceLock::new();
    lock(MODELS.get_or_init(Mutex::default))
}

/// One generation at a time in this process (llama.cpp already uses every core for one).
fn generation_lock() -> MutexGuard<'static, ()> {
    static GENERATION: Mutex<()> = Mutex::new(());
    lock(&GENERATION)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl EmbeddedProvider {
    /// Loads the GGUF model at `path` (once per process: a second provider for the same file
    /// shares the loaded model).
    pub fn load(path: &Path, options: EmbeddedOptions) -> Result<Self, ProviderError> {
        if options.n_ctx == 0 {
            return Err(ProviderError::Other(
                "embedded model: the context size (n_ctx) must be at least 1 token".into(),
            ));
        }
        let model = Self::load_model(path)?;
        let name = path
            .file_stem()
            .map(|stem| stem.to_string_lossy().into_owned())
            .unwrap_or_else(|| path.display().to_string());
        Ok(EmbeddedProvider {
            model,
            options,
            name,
            last_stats: Arc::new(Mutex::new(None)),
        })
    }

    fn load_model(path: &Path) -> Result<Arc<LoadedModel>, ProviderError> {
        let shown = path.display();
        let metadata = std::fs::metadata(path).map_err(|e| {
            ProviderError::Other(format!("embedded model {shown}: cannot read the file: {e}"))
        })?;
        if !metadata.is_file() {
            return Err(ProviderError::Other(format!(
                "embedded model {shown}: not a file (expected a .gguf model file)"
            )));
        }
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let backend = backend()?;
        // Held while loading, so two providers asking for the same file load it once.
        let mut models = loaded_models();
        models.retain(|_, model| model.strong_count() > 0);
        if let Some(model) = models.get(&key).and_then(Weak::upgrade) {
            return Ok(model);
        }
        let model = LlamaModel::load_from_file(backend, path, &LlamaModelParams::default())
            .map_err(|e| {
                ProviderError::Other(format!(
                    "embedded model {shown}: cannot load it as a GGUF model ({e}); is it a complete .gguf file?"
                ))
            })?;
        let template = Self::template_for(&model)?;
        let loaded = Arc::new(LoadedModel {
            path: path.to_path_buf(),
            model,
            template,
        });
        models.insert(key, Arc::downgrade(&loaded));
        Ok(loaded)
    }

    /// The model's own chat template when llama.cpp can apply it; else, for a file without
    /// one, llama.cpp's built-in template named after the model's architecture (`gemma` for
    /// `gemma3`: Gemma's turns are not ChatML, and a Gemma model prompted in ChatML answers
    /// by continuing the prompt); else ChatML.
    fn template_for(model: &LlamaModel) -> Result<LlamaChatTemplate, ProviderError> {
        let applies = |template: &LlamaChatTemplate| {
            let probe = [
                LlamaChatMessage::new("system".into(), "s".into()),
                LlamaChatMessage::new("user".into(), "u".into()),
            ];
            match probe {
                [Ok(system), Ok(user)] => model
                    .apply_chat_template(template, &[system, user], true)
                    .is_ok(),
                _ => false,
            }
        };
        if let Ok(template) = model.chat_template(None) {
            if applies(&template) {
                return Ok(template);
            }
        }
        let architecture = model
            .meta_val_str("general.architecture")
            .unwrap_or_default();
        let family = architecture.trim_end_matches(|c: char| c.is_ascii_digit());
        for name in [architecture.as_str(), family] {
            if let Ok(template) = LlamaChatTemplate::new(name) {
                if !name.is_empty() && applies(&template) {
                    return Ok(template);
                }
            }
        }
        LlamaChatTemplate::new("chatml")
            .map_err(|e| ProviderError::Other(format!("embedded model: chat template: {e}")))
    }

    /// The model file.
    pub fn path(&self) -> &Path {
        &self.model.path
    }

    /// The options this provider runs with.
    pub fn options(&self) -> EmbeddedOptions {
        self.options
    }

    /// The timings of this provider's last finished generation, if any.
    pub fn last_stats(&self) -> Option<GenerationStats> {
        *lock(&self.last_stats)
    }

    /// The prompt text for `request`: its messages in the model's chat template, ending with
    /// the opening of the assistant's turn.
    pub fn format_prompt(&self, request: &ModelRequest) -> Result<String, ProviderError> {
        let messages = request
            .messages
            .iter()
            .map(|message| {
                let role = match message.role {
                    ChatRole::System => "system",
                    ChatRole::User => "user",
                    ChatRole::Assistant => "assistant",
                };
                LlamaChatMessage::new(role.to_string(), message.content.clone()).map_err(|e| {
                    ProviderError::Other(format!("embedded: a message cannot be sent: {e}"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.model
            .model
            .apply_chat_template(&self.model.template, &messages, true)
            .map_err(|e| {
                ProviderError::Other(format!("embedded: cannot apply the chat template: {e}"))
            })
    }

    /// The tokens of `prompt`, with the model's BOS token when it wants one.
    fn tokenize(&self, prompt: &str) -> Vec<LlamaToken> {
        let vocab = self.model.model.vocab();
        let mut tokens = vocab.tokenize(prompt.as_bytes(), false, true);
        if vocab.should_add_bos() && tokens.first() != Some(&vocab.bos()) {
            tokens.insert(0, vocab.bos());
        }
        tokens
    }

    /// Runs one generation (blocking; called on tokio's blocking pool).
    fn generate(&self, job: &Job, cancelled: &AtomicBool) -> Result<ModelReply, ProviderError> {
        let model = &self.model.model;
        let tokens = self.tokenize(&job.prompt);
        let prompt_tokens = tokens.len() as u64;
        let n_ctx = u64::from(job.n_ctx);
        let max_tokens = u64::from(job.max_tokens);
        if tokens.is_empty() {
            return Err(ProviderError::Other("embedded: the prompt is empty".into()));
        }
        if prompt_tokens + max_tokens > n_ctx {
            return Err(ProviderError::PromptTooLong {
                tokens: prompt_tokens,
                limit: n_ctx.saturating_sub(max_tokens),
            });
        }
        let mut sampler = self.sampler(job)?;

        let _turn = generation_lock();
        let started = Instant::now();
        let deadline = started + job.timeout;
        let timed_out = || ProviderError::Timeout {
            provider: PROVIDER.to_string(),
            after_secs: job.timeout.as_secs(),
        };
        let check = |cancelled: &AtomicBool| -> Result<(), ProviderError> {
            if cancelled.load(Ordering::Relaxed) || Instant::now() >= deadline {
                Err(timed_out())
            } else {
                Ok(())
            }
        };

        // A context just big enough for this call (smaller contexts are faster to set up).
        let needed = (prompt_tokens + max_tokens) as u32;
        let ctx_size = needed
            .div_ceil(CONTEXT_GRANULE)
            .saturating_mul(CONTEXT_GRANULE)
            .min(job.n_ctx)
            .max(needed);
        let threads = self.options.threads.unwrap_or_else(default_threads);
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(ctx_size))
            .with_n_batch(ctx_size.min(512))
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let backend = backend()?;
        let mut ctx = model.new_context(backend, params).map_err(|e| {
            ProviderError::Other(format!(
                "embedded: cannot create a context of {ctx_size} tokens: {e}"
            ))
        })?;
        let n_batch = ctx.n_batch().max(1) as usize;
        let decode_error =
            |e: &dyn std::fmt::Display| ProviderError::Other(format!("embedded: llama.cpp: {e}"));

        // The prompt, in batches; only its last token's logits are needed.
        let mut batch = LlamaBatch::new(n_batch, 1);
        let mut pos: i32 = 0;
        for chunk in tokens.chunks(n_batch) {
            check(cancelled)?;
            batch.clear();
            for &token in chunk {
                pos += 1;
                let last = pos as usize == tokens.len();
                batch
                    .add(token, pos - 1, &[0], last)
                    .map_err(|e| decode_error(&e))?;
            }
            ctx.decode(&mut batch).map_err(|e| decode_error(&e))?;
        }
        let prompt_done = Instant::now();

        let vocab = model.vocab();
        let mut logits_index = batch.n_tokens() - 1;
        let mut reply: Vec<u8> = Vec::new();
        let mut completion_tokens: u64 = 0;
        let mut first_token: Option<Instant> = None;
        loop {
            check(cancelled)?;
            let token = sampler.next(&ctx, logits_index, &vocab)?;
            first_token.get_or_insert_with(Instant::now);
            if vocab.is_eog(token) {
                break;
            }
            vocab.token_to_piece_into(token, &mut reply, false, None);
            completion_tokens += 1;
            if completion_tokens >= max_tokens {
                break;
            }
            batch.clear();
            batch
                .add(token, pos, &[0], true)
                .map_err(|e| decode_error(&e))?;
            pos += 1;
            ctx.decode(&mut batch).map_err(|e| decode_error(&e))?;
            logits_index = 0;
        }
        let finished = Instant::now();

        let first_token = first_token.unwrap_or(finished);
        let generation = finished.duration_since(prompt_done).as_secs_f64();
        let stats = GenerationStats {
            prompt_tokens,
            completion_tokens,
            prompt_ms: prompt_done.duration_since(started).as_secs_f64() * 1000.0,
            generation_ms: generation * 1000.0,
            tokens_per_second: if generation > 0.0 {
                completion_tokens as f64 / generation
            } else {
                0.0
            },
            time_to_first_token_ms: first_token.duration_since(started).as_secs_f64() * 1000.0,
        };
        *lock(&self.last_stats) = Some(stats);

        Ok(ModelReply {
            content: String::from_utf8_lossy(&reply).into_owned(),
            tokens_in: prompt_tokens,
            tokens_out: completion_tokens,
            model: self.name.clone(),
        })
    }

    /// The sampler of a call: the schema's grammar (when there is one), then greedy at
    /// temperature 0, or the temperature, the request's `top_p` (nucleus sampling over the
    /// distribution at that temperature, as OpenAI-compatible servers define it) and a seeded
    /// random pick.
    fn sampler(&self, job: &Job) -> Result<TurnSampler, ProviderError> {
        let grammar = match &job.grammar {
            Some(grammar) => Some(
                LlamaSampler::grammar(&self.model.model, grammar, "root").map_err(|e| {
                    ProviderError::Other(format!(
                        "embedded: llama.cpp rejected the grammar of the turn's schema: {e}"
                    ))
                })?,
            ),
            None => None,
        };
        let mut steps = Vec::new();
        if let Some(penalty) = job.repeat_penalty.filter(|r| *r > 1.0) {
            steps.push(LlamaSampler::penalties(
                self.model.model.n_vocab(),
                PENALTY_LAST_N,
                penalty,
                0.0,
                0.0,
            ));
        }
        if job.temperature <= 0.0 {
            steps.push(LlamaSampler::greedy());
        } else {
            steps.push(LlamaSampler::temp(job.temperature));
            if let Some(p) = job.top_p {
                steps.push(LlamaSampler::top_p(p, 1));
            }
            steps.push(LlamaSampler::dist(job.seed));
        }
        let pick = LlamaSampler::chain_simple(steps);
        Ok(TurnSampler { grammar, pick })
    }
}

/// How many of the reply's latest tokens the repeat penalty looks at.
const PENALTY_LAST_N: i32 = 64;

/// Picks the next token, under the turn's grammar when there is one.
///
/// Checking the grammar against all ~50k candidates costs as much as evaluating a small
/// model, so (like llama.cpp's own `common_sampler`) the token is first picked freely and the
/// grammar checks only that one; only when the grammar refuses it are all candidates
/// filtered and the pick repeated.
struct TurnSampler {
    grammar: Option<LlamaSampler>,
    pick: LlamaSampler,
}

impl TurnSampler {
    fn next(
        &mut self,
        ctx: &LlamaContext<'_>,
        index: i32,
        vocab: &LlamaVocab<'_>,
    ) -> Result<LlamaToken, ProviderError> {
        let Some(grammar) = &mut self.grammar else {
            // `sample` also accepts the token into the sampler: no `accept` after it.
            return Ok(self.pick.sample(ctx, index));
        };
        let no_pick = || ProviderError::Other("embedded: the sampler picked no token".into());
        let mut candidates = ctx.token_data_array_ith(index);
        candidates.apply_sampler(&mut self.pick);
        let free = candidates.selected_token().ok_or_else(no_pick)?;
        let mut single = LlamaTokenDataArray::new(vec![LlamaTokenData::new(free, 1.0, 0.0)], false);
        single.apply_sampler(grammar);
        let allowed = single.data.first().is_some_and(|d| d.logit().is_finite());
        let token = if allowed {
            free
        } else {
            let mut candidates = ctx.token_data_array_ith(index);
            candidates.apply_sampler(grammar);
            candidates.apply_sampler(&mut self.pick);
            candidates.selected_token().ok_or_else(no_pick)?
        };
        // The end of generation ends the call; nothing more to accept.
        if !vocab.is_eog(token) {
            grammar.try_accept(token).map_err(|e| {
                ProviderError::Other(format!("embedded: the grammar refused a token: {e}"))
            })?;
            self.pick.accept(token);
        }
        Ok(token)
    }
}

/// The GBNF grammar llama.cpp derives from a JSON schema.
///
/// Whitespace between JSON tokens is limited to at most one space: llama.cpp allows newlines
/// and up to 20 spaces of indentation there, and small models spend half their reply tokens
/// on pretty-printing.
pub fn schema_grammar(schema: &serde_json::Value) -> Result<String, ProviderError> {
    let grammar = llama_cpp_2::json_schema_to_grammar(&schema.to_string()).map_err(|e| {
        ProviderError::Other(format!(
            "embedded: cannot turn the turn's JSON schema into a grammar: {e}"
        ))
    })?;
    Ok(compact_whitespace(&grammar))
}

/// `grammar` with its `space` rule reduced to nothing or one space.
fn compact_whitespace(grammar: &str) -> String {
    grammar
        .lines()
        .map(|line| {
            if line.starts_with("space ::=") {
                "space ::= | \" \""
            } else {
                line
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

fn default_threads() -> i32 {
    std::thread::available_parallelism()
        .map(|n| i32::try_from(n.get()).unwrap_or(4))
        .unwrap_or(4)
}

/// What a blocking generation needs from a request.
struct Job {
    prompt: String,
    grammar: Option<String>,
    max_tokens: u32,
    temperature: f32,
    /// Nucleus sampling, used when the temperature is above 0.
    top_p: Option<f32>,
    /// The repeat penalty over the reply's last [`PENALTY_LAST_N`] tokens.
    repeat_penalty: Option<f32>,
    seed: u32,
    /// The context of the call: the provider's `n_ctx`, capped by the request's
    /// `context_window`.
    n_ctx: u32,
    timeout: Duration,
}

/// Sets its flag when dropped: a caller that stops waiting stops the generation too.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

#[async_trait]
impl Provider for EmbeddedProvider {
    /// Every reply is sampled under the schema's grammar.
    fn constrains_replies(&self) -> bool {
        true
    }

    fn in_process(&self) -> bool {
        true
    }

    fn name(&self) -> &str {
        PROVIDER
    }

    async fn complete(&self, request: &ModelRequest) -> Result<ModelReply, ProviderError> {
        let prompt = self.format_prompt(request)?;
        let grammar = request
            .tool_schema
            .as_ref()
            .map(schema_grammar)
            .transpose()?;
        let job = Job {
            prompt,
            grammar,
            max_tokens: request
                .max_tokens
                .unwrap_or(self.options.max_tokens_default)
                .max(1),
            temperature: request.temperature as f32,
            top_p: request.top_p.map(|p| p as f32),
            repeat_penalty: request.repeat_penalty.map(|r| r as f32),
            // Seeds are 32-bit in llama.cpp; larger ones keep their low bits.
            seed: request.seed.map_or(DEFAULT_SEED, |seed| seed as u32),
            n_ctx: request
                .context_window
                .map_or(self.options.n_ctx, |window| window.min(self.options.n_ctx)),
            timeout: request.timeout,
        };
        let cancelled = Arc::new(AtomicBool::new(false));
        let _cancel = CancelOnDrop(cancelled.clone());
        let provider = self.clone();
        tokio::task::spawn_blocking(move || provider.generate(&job, &cancelled))
            .await
            .map_err(|e| ProviderError::Other(format!("embedded: the generation failed: {e}")))?
    }
}
