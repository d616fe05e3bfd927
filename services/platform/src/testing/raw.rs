//! Calling any RPC by its path with raw bytes, for tests that walk every RPC
//! of the descriptor set without knowing its types.

use tonic::Status;

/// Calls the RPC at `path` (`/package.Service/Method`) with `body` as the
/// request's bytes, for tests that walk every RPC without knowing its types.
/// Answers with the response's bytes or the status; for a server stream,
/// with its first message, or with no bytes when the stream opened and no
/// message came within a second (a watch with nothing to tell yet).
pub async fn call_raw<T>(channel: T, path: &str, body: Vec<u8>) -> Result<Vec<u8>, Status>
where
    T: tonic::client::GrpcService<tonic::body::Body>,
    T::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    T::ResponseBody: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    <T::ResponseBody as http_body::Body>::Error:
        Into<Box<dyn std::error::Error + Send + Sync>> + Send,
{
    let mut grpc = tonic::client::Grpc::new(channel);
    grpc.ready()
        .await
        .map_err(|error| Status::unavailable(error.into().to_string()))?;
    let path = http::uri::PathAndQuery::try_from(path)
        .map_err(|error| Status::invalid_argument(error.to_string()))?;
    // A unary answer is a stream of one message: its headers come with it.
    let mut stream = grpc
        .server_streaming(tonic::Request::new(body), path, RawCodec)
        .await?
        .into_inner();
    match tokio::time::timeout(std::time::Duration::from_secs(1), stream.message()).await {
        Ok(Ok(Some(message))) => Ok(message),
        Ok(Ok(None)) | Err(_) => Ok(Vec::new()),
        Ok(Err(status)) => Err(status),
    }
}

/// A codec passing bytes through unchanged.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Status> {
        use bytes::BufMut as _;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut tonic::codec::DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        use bytes::Buf as _;
        let mut bytes = vec![0; src.remaining()];
        src.copy_to_slice(&mut bytes);
        Ok(Some(bytes))
    }
}
