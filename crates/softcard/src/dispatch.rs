//! The trussed dispatcher the PIV applet needs: PIN handling (trussed-auth-backend) and chunked
//! files, key wrapping and HPKE (trussed-staging), beside trussed's core mechanisms. Written here
//! because the applet's own glue (`dev-vpicc`) is not published; it follows trussed-staging's
//! `virt::Dispatcher`, with the auth backend added.

use trussed::backend::{Backend as _, BackendId};
use trussed::serde_extensions::{ExtensionDispatch, ExtensionId, ExtensionImpl};
use trussed::service::ServiceResources;
use trussed::types::Context;
use trussed::virt::{self, StoreConfig};
use trussed::Platform;
use trussed_auth::AuthExtension;
use trussed_auth_backend::{AuthBackend, AuthContext, FilesystemLayout};
use trussed_chunked::ChunkedExtension;
use trussed_core::api::{reply, request, Reply, Request};
use trussed_core::types::Location;
use trussed_core::Error;
use trussed_hpke::HpkeExtension;
use trussed_staging::{StagingBackend, StagingContext};
use trussed_wrap_key_to_file::WrapKeyToFileExtension;

pub struct Dispatcher {
    staging: StagingBackend,
    auth: AuthBackend,
}

#[derive(Default)]
pub struct DispatchContext {
    staging: StagingContext,
    auth: AuthContext,
}

pub enum Backends {
    Staging,
    Auth,
}

pub enum Extensions {
    Chunked,
    WrapKeyToFile,
    Hpke,
    Auth,
}

impl TryFrom<u8> for Extensions {
    type Error = Error;
    fn try_from(v: u8) -> Result<Self, Error> {
        Ok(match v {
            0 => Self::Chunked,
            1 => Self::WrapKeyToFile,
            2 => Self::Hpke,
            3 => Self::Auth,
            _ => return Err(Error::FunctionNotSupported),
        })
    }
}

impl From<Extensions> for u8 {
    fn from(e: Extensions) -> u8 {
        match e {
            Extensions::Chunked => 0,
            Extensions::WrapKeyToFile => 1,
            Extensions::Hpke => 2,
            Extensions::Auth => 3,
        }
    }
}

macro_rules! extension_id {
    ($ext:ty, $id:expr) => {
        impl ExtensionId<$ext> for Dispatcher {
            type Id = Extensions;
            const ID: Extensions = $id;
        }
    };
}
extension_id!(ChunkedExtension, Extensions::Chunked);
extension_id!(WrapKeyToFileExtension, Extensions::WrapKeyToFile);
extension_id!(HpkeExtension, Extensions::Hpke);
extension_id!(AuthExtension, Extensions::Auth);

impl ExtensionDispatch for Dispatcher {
    type BackendId = Backends;
    type Context = DispatchContext;
    type ExtensionId = Extensions;

    fn core_request<P: Platform>(
        &mut self,
        backend: &Backends,
        ctx: &mut Context<DispatchContext>,
        request: &Request,
        resources: &mut ServiceResources<P>,
    ) -> Result<Reply, Error> {
        match backend {
            Backends::Staging => {
                self.staging
                    .request(&mut ctx.core, &mut ctx.backends.staging, request, resources)
            }
            Backends::Auth => Err(Error::RequestNotAvailable),
        }
    }

    fn extension_request<P: Platform>(
        &mut self,
        backend: &Backends,
        extension: &Extensions,
        ctx: &mut Context<DispatchContext>,
        request: &request::SerdeExtension,
        resources: &mut ServiceResources<P>,
    ) -> Result<reply::SerdeExtension, Error> {
        let core = &mut ctx.core;
        match (backend, extension) {
            (Backends::Auth, Extensions::Auth) => {
                ExtensionImpl::<AuthExtension>::extension_request_serialized(
                    &mut self.auth,
                    core,
                    &mut ctx.backends.auth,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::Chunked) => {
                ExtensionImpl::<ChunkedExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::WrapKeyToFile) => {
                ExtensionImpl::<WrapKeyToFileExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            (Backends::Staging, Extensions::Hpke) => {
                ExtensionImpl::<HpkeExtension>::extension_request_serialized(
                    &mut self.staging,
                    core,
                    &mut ctx.backends.staging,
                    request,
                    resources,
                )
            }
            _ => Err(Error::RequestNotAvailable),
        }
    }
}

pub type Client<'a> = virt::Client<'a, Dispatcher>;

/// Runs `f` with a trussed client on a RAM-backed virtual platform and the backends above.
pub fn with_client<R>(f: impl FnOnce(Client<'_>) -> R) -> R {
    virt::with_platform(StoreConfig::ram(), |platform| {
        platform.run_client_with_backends(
            "opencm-softcard",
            Dispatcher {
                staging: StagingBackend::default(),
                auth: AuthBackend::new(Location::Internal, FilesystemLayout::V0),
            },
            &[
                BackendId::Custom(Backends::Auth),
                BackendId::Custom(Backends::Staging),
                BackendId::Core,
            ],
            f,
        )
    })
}
